"""results: lm-eval outputs -> tidy table, leaderboards, plots, calibration and regression checks."""

"""translation: English store -> translated store (backends, cache, checks, quality report)."""

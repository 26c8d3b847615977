"""The static leaderboard website (`medeval site`): build.py turns results into pages through the Jinja2
templates in templates/; static/ holds the stylesheet and the one script (sorting and filtering only)."""

"""`python -m translation translate ...`: the same as `medeval translate ...` (one parser, one error policy)."""
import sys

from medtasks.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m models COMMAND ...`: the name-model command line (see models/cli.py)."""
import sys

from .cli import main

sys.exit(main())

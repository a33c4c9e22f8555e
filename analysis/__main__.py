"""`python3 -m analysis summary|report PATH...` (see analysis/cli.py)."""
import sys

from .cli import main

sys.exit(main())

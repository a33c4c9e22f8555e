"""`python3 -m statex_analysis summary|report PATH...` (see statex_analysis/cli.py)."""
import sys

from .cli import main

sys.exit(main())

"""`python3 -m analysis ...` is `python3 -m statex_analysis ...` (kept for existing scripts)."""
import sys

from statex_analysis.cli import main

sys.exit(main())

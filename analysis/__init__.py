"""Compatibility shim: the package is `statex_analysis`; `python3 -m analysis` still works from the
repository root. Import `statex_analysis` in new code."""
from statex_analysis import *  # noqa: F401,F403
from statex_analysis import __all__, __version__  # noqa: F401

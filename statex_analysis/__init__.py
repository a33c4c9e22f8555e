"""statex-sim analysis: read results files and sweeps, print tables, draw the standard figures.

    import analysis
    runs = analysis.load_runs(["runs/my_sweep"])       # DataFrame, one row per trial
    evals = analysis.load_evals(runs)                  # long: run, step, loss, accuracy
See docs/analysis.md.
"""
from .frames import (load_curves, load_evals, load_gaps, load_runs, load_segments)
from .integrity import IntegrityError, open_statex, verify
from .io import FormatError, read_run
from .safetensors_io import export_safetensors, import_safetensors
from .tokens import read_tokens

__all__ = ["load_runs", "load_curves", "load_evals", "load_gaps", "load_segments",
           "read_run", "FormatError", "IntegrityError", "open_statex", "verify", "read_tokens",
           "export_safetensors", "import_safetensors"]
__version__ = "0.1.0"

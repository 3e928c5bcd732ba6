"""Train and sample the makemore-style name model: `python examples/train_names.py train` (see models/cli.py)."""
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# One BLAS thread, before numpy loads: see models/__main__.py for why.
if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from models.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

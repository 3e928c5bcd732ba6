"""`python -m models COMMAND ...` (installed: `python -m tinygrad_mm_models ...`): the name-model CLI."""
import os
import sys

# The model's matmuls are tiny (batch 32): BLAS threads only add synchronization, and on a busy
# machine oversubscribed OpenBLAS threads make each step ~20x slower. Set before numpy loads;
# export OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) to choose otherwise.
if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import main  # noqa: E402

sys.exit(main())

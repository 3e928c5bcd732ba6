"""makemore-style character language models built on tinygrad_mm: `python -m models` from the
clone; pip installs this folder as `tinygrad_mm_models` (`python -m tinygrad_mm_models`)."""

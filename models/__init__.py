"""Example models built on tinygrad_mm (makemore-style character language models)."""

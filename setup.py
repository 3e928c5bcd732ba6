"""Install tinygrad_mm (numpy only) and the name model; extras: test, gpu, plot, progress.

Only names this project owns go into site-packages: the library `tinygrad_mm` and the name
model, whose folder `models/` installs as `tinygrad_mm_models` (run it as
`python -m tinygrad_mm_models train` once installed, or `python -m models train` from the
clone). `examples/` and `benchmarks/` stay in the repository.
"""
from setuptools import find_packages, setup

setup(
    name="tinygrad_mm",
    version="0.1.0",
    description="A tape-based reverse-mode autodiff library on numpy/cupy, with a makemore-style name model",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["tinygrad_mm", "tinygrad_mm.*"]) + ["tinygrad_mm_models"],
    package_dir={"tinygrad_mm_models": "models"},
    package_data={"tinygrad_mm_models": ["data/names.txt", "data/README.md"]},
    install_requires=["numpy>=1.24"],
    extras_require={
        # setuptools: tests/test_packaging.py runs setup.py (Python 3.12+ venvs come without it)
        "test": ["pytest>=7", "hypothesis>=6.80", "torch==2.13.0", "matplotlib>=3.5", "tqdm>=4.60",
                 "setuptools>=61"],
        "gpu": ["cupy-cuda12x"],
        "plot": ["matplotlib>=3.5"],
        "progress": ["tqdm>=4.60"],
    },
)

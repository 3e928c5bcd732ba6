"""Install tinygrad_mm (numpy only) and the name model; extras: test, gpu, plot, progress."""
from setuptools import find_packages, setup

setup(
    name="tinygrad_mm",
    version="0.1.0",
    description="A tape-based reverse-mode autodiff library on numpy/cupy, with a makemore-style name model",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["tinygrad_mm", "tinygrad_mm.*", "models", "models.*",
                                    "examples", "benchmarks"]),
    package_data={"models": ["data/names.txt", "data/README.md"]},
    install_requires=["numpy>=1.24"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80", "torch==2.13.0", "matplotlib>=3.5", "tqdm>=4.60"],
        "gpu": ["cupy-cuda12x"],
        "plot": ["matplotlib>=3.5"],
        "progress": ["tqdm>=4.60"],
    },
)

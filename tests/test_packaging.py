"""setup.py installs only names this project owns (no top-level models/examples/benchmarks in
site-packages), with the bundled data; `python -m models` keeps working from the clone."""
import os
import runpy

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def setup_kwargs():
    import setuptools
    seen = {}
    real = setuptools.setup
    cwd = os.getcwd()
    setuptools.setup = lambda **kw: seen.update(kw)
    try:
        os.chdir(ROOT)  # setup.py reads README.md relative to the clone
        runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real
        os.chdir(cwd)
    return seen


def test_only_owned_top_level_names_are_installed(setup_kwargs):
    top = {p.split(".")[0] for p in setup_kwargs["packages"]}
    assert top == {"tinygrad_mm", "tinygrad_mm_models"}, top


def test_the_name_model_installs_from_models_with_its_data(setup_kwargs):
    assert setup_kwargs["package_dir"] == {"tinygrad_mm_models": "models"}
    for rel in setup_kwargs["package_data"]["tinygrad_mm_models"]:
        assert os.path.isfile(os.path.join(ROOT, "models", rel)), rel
    # every module of models/ imports relatively, so it works under either name
    for name in os.listdir(os.path.join(ROOT, "models")):
        if name.endswith(".py"):
            with open(os.path.join(ROOT, "models", name), encoding="utf-8") as f:
                src = f.read()
            assert "from models" not in src and "import models" not in src, name

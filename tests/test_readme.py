"""The README's first screen: its two commands exist, and CI runs exactly its test command."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line.strip() for line in first_block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_first_block_has_a_train_and_a_test_command():
    train, test = _readme_commands()
    assert "python -m models train" in train
    assert "pytest" in test and ".[test]" in test


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test in [line.strip() for line in ci.splitlines()], "README and .ci/run test commands differ"
    assert "python3 -m venv" in ci  # CI installs everything itself, in a fresh environment


def test_bundled_names_are_the_makemore_file():
    import hashlib
    data = (ROOT / "models" / "data" / "names.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
    assert "MIT" in (ROOT / "models" / "data" / "README.md").read_text(encoding="utf-8")

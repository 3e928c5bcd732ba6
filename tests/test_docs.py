"""Every ```python block in docs/*.md and README.md runs: blocks of one file share a namespace, in order."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = sorted([os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md")]
              + ["README.md"])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(path, lang="python"):
    """(line number, source) of each fenced block in `lang` (shell blocks are skipped)."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == lang]


def test_the_three_guides_exist_and_have_python_blocks():
    for name in ("tape.md", "custom_ops.md", "training.md"):
        assert code_blocks(os.path.join("docs", name)), f"docs/{name} has no ```python block"


def test_fence_parser_finds_python_and_skips_shell(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("text\n```bash\nrm -rf /\n```\n```python\na = 1\n```\n```python\nb = a\n```\n")
    blocks = code_blocks(str(md))  # an absolute path: os.path.join keeps it
    assert [src for _, src in blocks] == ["a = 1\n", "b = a\n"] and blocks[0][0] == 6


@pytest.mark.parametrize("path", DOCS)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files: keep them out of the repository
    monkeypatch.syspath_prepend(ROOT)
    namespace = {"__name__": "__doc_example__"}
    for line, src in code_blocks(path):
        # the filename and line in tracebacks point at the markdown source
        code = compile("\n" * (line - 1) + src, os.path.join(ROOT, path), "exec")
        exec(code, namespace)


def _cli_options():
    """{subcommand: its option strings}, read from the CLI's parser (so the doc tracks the code)."""
    import argparse

    from models.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: set(p._option_string_actions) for name, p in sub.choices.items()}


def test_training_doc_names_only_real_commands_and_options():
    with open(os.path.join(ROOT, "docs", "training.md"), encoding="utf-8") as f:
        text = f.read()
    options = _cli_options()
    commands = set(re.findall(r"python -m models ([a-z][a-z-]*)", text)) - {"COMMAND"}
    assert commands and commands <= set(options), f"unknown commands: {commands - set(options)}"
    known = set().union(*options.values())
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
    assert flags and flags <= known, f"options the CLI does not have: {sorted(flags - known)}"

"""tape.save_html: the page's data is the sweep's, and a real headless browser shows it step by step.

The browser tests drive Debian's chromium (installed in CI by .ci/install_browser.sh) with
`--dump-dom` / `--screenshot` on `page.html#step=N`, which makes the page press Step N times.
"""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import Tape
from tinygrad_mm.tape_html import sweep_steps

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                   "(sh .ci/install_browser.sh installs Debian's)")


def micrograd_example():
    """micrograd's first expression: L = (a*b + c) * f, with dL/da = 6, dL/db = -4, dL/dc = -2, dL/df = 4."""
    a, b, c, f = (tg.tensor(v, dtype=np.float64, requires_grad=True) for v in (2.0, -3.0, 10.0, -2.0))
    with Tape() as tape:
        L = (a * b + c) * f
    return tape, L, dict(a=a, b=b, c=c, f=f)


def test_the_page_holds_every_step_of_the_sweep_and_saving_changes_no_gradient(tmp_path):
    tape, L, leaves = micrograd_example()
    path = tape.save_html(str(tmp_path / "tape.html"), L, names=leaves)
    text = open(path, encoding="utf-8").read()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text  # offline
    assert "<script src" not in text and "<link" not in text
    data = json.loads(text.split("const DATA = ", 1)[1].split(";\n", 1)[0])
    got = [(s["name"], s["grad_out"]["values"], [(i["to"], i["values"]) for i in s["increments"]])
           for s in data["steps"]]
    assert got == [("Mul", [1.0], [("#1 Add", [-2.0]), ("leaf f", [4.0])]),
                   ("Add", [-2.0], [("#0 Mul", [-2.0]), ("leaf c", [-2.0])]),
                   ("Mul", [-2.0], [("leaf a", [6.0]), ("leaf b", [-4.0])])]
    assert all(t.grad is None for t in leaves.values())       # the page's sweep left no trace ...
    L.backward()                                              # ... and the tape is still live
    assert [leaves[k].item() for k in "abcf"] == [2.0, -3.0, 10.0, -2.0]
    assert [leaves[k].grad.item() for k in "abcf"] == [6.0, -4.0, -2.0, 4.0]
    assert os.listdir(tmp_path) == ["tape.html"]               # no temp file left behind


def test_saving_restores_gradients_that_were_already_there():
    x = tg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    x.grad = tg.tensor([10.0, 20.0], dtype=np.float64)
    with Tape() as tape:
        h = x * 3.0
        h.retain_grad()
        y = h.sum()
    steps = sweep_steps(tape, y)
    assert [s["name"] for s in steps] == ["Sum", "Mul"] and steps[1]["increments"][0]["values"] == [3.0, 3.0]
    assert x.grad.tolist() == [10.0, 20.0] and h.grad is None and y.entry.grad_out is None


def test_large_arrays_get_shape_norm_and_a_heat_strip():
    w = tg.tensor(np.linspace(-1, 1, 600).reshape(20, 30), requires_grad=True)
    with Tape() as tape:
        loss = (w * w).sum()
    first, second = sweep_steps(tape, loss)[1]["increments"]   # w * w: one increment per use, each w
    assert [first["pos"], second["pos"]] == [0, 1] and first["to"] == second["to"] == "leaf"
    assert first["shape"] == [20, 30] and "values" not in first and len(first["strip"]) == 64
    assert np.isclose(first["norm"], np.linalg.norm(w.detach().numpy())) and np.isclose(first["absmax"], 1.0)
    chunks = np.array_split(w.detach().numpy().reshape(-1), 64)
    np.testing.assert_allclose(first["strip"], [c.mean() for c in chunks])


def test_a_freed_or_foreign_loss_is_a_clear_error(tmp_path):
    tape, L, _ = micrograd_example()
    L.backward()
    with pytest.raises(ValueError, match=r"entry #2 \(Mul\) was already swept and freed: save the page before"):
        tape.save_html(str(tmp_path / "t.html"), L)
    with pytest.raises(ValueError, match="loss must be a tensor recorded on this tape"):
        Tape().save_html(str(tmp_path / "t.html"), L)
    path = tape.save_html(str(tmp_path / "t.html"))            # no loss: the picture only
    assert "No loss was given" in open(path, encoding="utf-8").read()


# -- in a real browser ----------------------------------------------------------------------------

def browse(tmp_path, page, *args):
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--window-size=1100,700", *args,
           "file://" + page]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


def panel(dom):
    """The text of the side panel (tags stripped) and the classes of every node and edge."""
    import re
    side = dom.split('<div id="side">', 1)[1].split("<script>", 1)[0]
    text = re.sub(r"<[^>]+>", " ", side)
    classes = dict(re.findall(r'<(?:g|path) id="([^"]+)" class="([^"]+)"', dom))
    return " ".join(text.split()), classes


@needs_browser
def test_stepping_in_the_browser_shows_what_the_sweep_computed(tmp_path):
    tape, L, leaves = micrograd_example()
    page = tape.save_html(str(tmp_path / "tape.html"), L, names=leaves)
    text, classes = panel(browse(tmp_path, page, "--dump-dom"))
    assert "Before the sweep" in text and "step 1" not in text
    assert not any("current" in c for c in classes.values())
    text, classes = panel(browse(tmp_path, page + "#step=2", "--dump-dom"))
    assert "step 2 of 3: #1 Add" in text
    assert "upstream gradient (d loss / d output of #1): shape () float64, |·| = 2 values [-2]" in text
    assert "adjoint of #0 Mul (input 0) += shape () float64, |·| = 2 values [-2]" in text
    assert ".grad of leaf c (input 1) += shape () float64, |·| = 2 values [-2]" in text
    assert "current" in classes["e1"] and "swept" in classes["e2"] and "target" in classes["e0"]
    assert "active" in classes["x1_0"] and "active" in classes["x1_1"] and "active" not in classes["x2_0"]
    text, _ = panel(browse(tmp_path, page + "#step=3", "--dump-dom"))
    assert "Sweep finished" in text and ".grad of leaf a (input 0) += shape () float64, |·| = 6 values [6]" in text
    assert ".grad of leaf b (input 1) += shape () float64, |·| = 4 values [-4]" in text


@needs_browser
def test_screenshots_before_and_after_stepping_the_name_model(tmp_path):
    from PIL import Image
    from models.mlp import MLPConfig, MLPLanguageModel
    model = MLPLanguageModel(MLPConfig(), generator=tg.Generator(1))
    X, Y = np.array([[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 13]]), np.array([5, 13, 13, 1])
    with Tape() as tape:
        _, loss = model(X, Y)
    page = tape.save_html(str(tmp_path / "model.html"), loss, names=model)
    text, _ = panel(browse(tmp_path, page + "#step=3", "--dump-dom"))
    steps = list(tape.backward_steps(loss, retain_graph=True))   # our own sweep, to compare with the page
    norm = float(np.linalg.norm(steps[2].grad_out.astype(np.float64)))
    assert steps[2].entry.name == "Tanh" and "step 3 of 6: #3 Tanh" in text
    assert f"shape (4, 200) float32, |·| = {float(f'{norm:.4g}'):g}" in text and "heat strip (64 chunk means" in text
    shots = {}
    for name, url in (("before", page), ("after", page + "#step=3")):
        browse(tmp_path, url, f"--screenshot={tmp_path / name}.png")
        shots[name] = np.asarray(Image.open(tmp_path / f"{name}.png").convert("RGB")).astype(int)
    orange = lambda im: int((np.abs(im - [234, 88, 12]).sum(axis=2) < 40).sum())  # the current entry's border
    assert shots["before"].shape == shots["after"].shape == (700, 1100, 3)
    assert orange(shots["before"]) == 0 and orange(shots["after"]) > 500
    assert shots["before"].std() > 10                                      # the picture is drawn, not blank

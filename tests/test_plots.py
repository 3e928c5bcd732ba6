"""The PNGs of a run: titles name the run, lr decays are marked, the embedding plot says which
dimensions it shows and keeps '.' readable; the files open and are not blank."""
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from models.cli import main  # noqa: E402
from models.dataset import load_words  # noqa: E402
from models.plots import embedding_figure, loss_figure, lr_find_figure, run_title  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    data = root / "names.txt"
    data.write_text("\n".join(load_words()[:300]) + "\n", encoding="utf-8")
    out = root / "myrun"
    assert main(["train", "--data", str(data), "--steps", "300", "--decay-at", "150", "250", "--n-hidden", "16",
                 "--eval-every", "100", "--progress", "none", "--num-samples", "0", "--out-dir", str(out)]) == 0
    assert main(["lr-find", "--data", str(data), "--n-hidden", "16", "--num", "60", "--out-dir", str(out)]) == 0
    assert main(["plot", "--out-dir", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", ["loss.png", "lr_find.png", "embedding.png"])
def test_pngs_open_and_are_not_blank(run_dir, name):
    img = matplotlib.image.imread(os.path.join(run_dir, name))
    assert img.ndim == 3 and img.shape[0] >= 400 and img.shape[1] >= 600
    assert img[..., :3].std() > 0.05  # more than a uniform background
    assert not [f for f in os.listdir(run_dir) if f.endswith(".tmp")]


def test_loss_plot_title_and_decay_marks():
    losses = np.exp(np.linspace(1.2, 0.7, 400))
    title = run_title("myrun", {"recipe": "default", "steps": 400}, 400, [[200, 2.31], [400, 2.2345]])
    assert title == "myrun: recipe default, 400 of 400 steps, final dev loss 2.2345"
    fig = loss_figure(losses, [[200, 2.31], [400, 2.2345]], title=title, decay_at=[100, 300, 900])
    ax = fig.axes[0]
    assert ax.get_title() == title
    vertical = sorted(line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1)
    assert vertical == [100, 300]  # the decay past the last step is not drawn
    assert "lr x0.1" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_embedding_plot_names_its_dimensions_and_marks_the_boundary_token():
    rng = np.random.default_rng(0)
    itos = list(".abc")
    fig = embedding_figure(rng.standard_normal((4, 10)), itos, title="myrun")
    ax = fig.axes[0]
    assert "dimensions 0 and 1 of 10" in ax.get_title() and ax.get_title().startswith("myrun")
    labels = {t.get_text(): t for t in ax.texts}
    assert labels["."].get_color() == "black" and labels["."].get_fontsize() >= 20 and {"a", "b", "c"} <= set(labels)
    assert "both dimensions" in embedding_figure(rng.standard_normal((4, 2)), itos).axes[0].get_title()


def test_lr_find_title():
    lrs = 10 ** np.linspace(-3, 0, 50)
    fig = lr_find_figure(lrs, np.ones(50), np.ones(50), 0.05, title="myrun: lr-find")
    assert fig.axes[0].get_title() == "myrun: lr-find"

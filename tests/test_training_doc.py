"""docs/training.md's recipe table says what models/config.py's RECIPES define (so they cannot drift)."""
import os
import re

import pytest

from models.config import RECIPES, from_recipe
from models.mlp import MLPLanguageModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recipe_rows(text):
    """{recipe name: its table row} from the markdown table whose rows start with | `name` |."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z]+)` \|.*$", text, re.M)}


def expected_phrases(name):
    c = from_recipe(name).resolved()
    fracs = RECIPES[name].get("decay_frac")
    decays = (" and ".join(f"{round(f * 100)}%" for f in fracs) if fracs
              else "step " + ", ".join(f"{s:,}" for s in c.decay_at))
    n_params = MLPLanguageModel(c.mlp_config(27)).num_parameters()
    return [f"block {c.block_size}", f"n_embd {c.n_embd}", f"n_hidden {c.n_hidden}", f"({n_params:,} parameters)",
            f"{c.optimizer.upper()} lr {c.lr:g}", f"×{c.decay_factor:g} at {decays}", f"{c.steps:,} steps",
            f"batch {c.batch_size}", f"weight decay {sci(c.weight_decay)}" if c.weight_decay else "no weight decay"]


def sci(x):
    """1e-4 as the doc writes it (Python's :g gives 0.0001)."""
    mantissa, exp = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exp)}"


@pytest.fixture(scope="module")
def rows():
    with open(os.path.join(ROOT, "docs", "training.md"), encoding="utf-8") as f:
        return recipe_rows(f.read())


def test_every_recipe_has_exactly_one_row(rows):
    assert set(rows) == set(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_row_matches_the_code(rows, name):
    missing = [p for p in expected_phrases(name) if p not in rows[name]]
    assert not missing, f"docs/training.md's `{name}` row lacks {missing}: {rows[name]}"


def test_the_check_catches_the_drift_it_was_written_for():
    # the row as it was: 400,000 steps and no weight decay, while the code says 200,000 and 1e-4
    stale = ("| `wide` | block 8, n_embd 24, n_hidden 512 (113,315 parameters) | SGD lr 0.1, ×0.1 at 50% "
             "and 75%, 400,000 steps, batch 32 |")
    missing = [p for p in expected_phrases("wide") if p not in recipe_rows(stale)["wide"]]
    assert missing == ["200,000 steps", "weight decay 1e-4"]

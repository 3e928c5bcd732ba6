"""Data that is not lower-case a-z names is reported (vocabulary, odd characters, outlier lines)
and can be normalised (--lowercase, --nfc)."""
import re
import unicodedata

import pytest

from models.cli import main
from models.dataset import data_warnings, load_lines, load_words, normalize

SMALL = ["--n-hidden", "16", "--eval-every", "0", "--progress", "none", "--num-samples", "0", "--steps", "3"]


@pytest.fixture
def messy(tmp_path):
    words = load_words()[:300]
    words[4] = "marlsObAVni"
    words[7] = "jose\u0301"          # e + COMBINING ACUTE ACCENT
    words[9] = "mary ann"
    path = tmp_path / "messy.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return str(path)


def test_train_prints_the_vocabulary_and_warns_about_odd_characters(messy, tmp_path, capsys):
    assert main(["train", "--data", messy, "--out-dir", str(tmp_path / "a"), *SMALL]) == 0
    cap = capsys.readouterr()
    assert "vocabulary (" in cap.out and "'.abcdefghijklmnopqrstuvwxyz" not in cap.out  # odd chars in it
    warning = next(line for line in cap.err.splitlines() if "outside a-z" in line)
    assert "'O' (U+004F) x1, e.g. line 5: 'marlsObAVni'" in warning
    assert "' ' (U+0020) x1, e.g. line 10: 'mary ann'" in warning
    assert "U+0301" in warning and "--lowercase" in warning and "--nfc" in warning


def test_lowercase_and_nfc_normalise_the_data(messy, tmp_path, capsys):
    assert main(["train", "--data", messy, "--lowercase", "--nfc", "--out-dir", str(tmp_path / "b"), *SMALL]) == 0
    cap = capsys.readouterr()
    assert "'O'" not in cap.err and "U+0301" not in cap.err and "'é' (U+00E9)" in cap.err
    words, linenos = load_lines(messy, lowercase=True, nfc=True)
    assert words[4] == "marlsobavni" and words[7] == "jos\u00e9" and linenos[:3] == [1, 2, 3]
    assert normalize("E\u0301", lowercase=True, nfc=True) == "\u00e9"
    assert unicodedata.is_normalized("NFC", normalize("x\u0301", nfc=True))
    # the normalisation is part of the run: a resume may not drop it
    assert main(["train", "--resume", "--out-dir", str(tmp_path / "b"), "--steps", "4", "--progress", "none",
                 "--num-samples", "0"]) == 0


def test_an_outlier_line_is_reported_with_its_number_and_the_limit(tmp_path, capsys):
    words = load_words()[:300]
    words[20] = "a" * 5000
    path = tmp_path / "long.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    assert main(["train", "--data", str(path), "--out-dir", str(tmp_path / "r"), *SMALL]) == 0
    err = capsys.readouterr().err
    assert re.search(r"line 21 \(5,000 characters, in (train|dev|test)\)", err)
    assert "longer than 50" in err and "--max-line-length" in err
    assert main(["train", "--data", str(path), "--max-line-length", "6000", "--out-dir", str(tmp_path / "s"),
                 *SMALL]) == 0
    assert "longer than" not in capsys.readouterr().err


def test_clean_names_draw_no_warning():
    words, linenos = load_lines()
    assert data_warnings(words, linenos) == []

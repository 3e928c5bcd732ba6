"""Tests for models/dataset.py: loading, vocabulary, examples, splits, bigram baseline."""

import hashlib

import numpy as np
import pytest

from models.bigram import bigram_counts, bigram_nll
from models.dataset import (DEFAULT_DATA_PATH, DataError, NamesData, Vocab,
                            build_examples, load_words, make_splits, split_indices, split_words)

NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"


@pytest.fixture(scope="module")
def words():
    return load_words()


@pytest.fixture(scope="module")
def vocab(words):
    return Vocab.from_words(words)


def lecture_examples(words, vocab, block_size):
    """The makemore lecture's loop, verbatim, as the reference."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = vocab.stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return np.array(X, dtype=np.int64).reshape(-1, block_size), np.array(Y, dtype=np.int64)


# --- bundled data -----------------------------------------------------------------------------

def test_bundled_file_is_unchanged():
    with open(DEFAULT_DATA_PATH, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == NAMES_SHA256


def test_bundled_sizes(words, vocab):
    assert len(words) == 32033
    assert words[:3] == ["emma", "olivia", "ava"]
    assert vocab.size == 27
    assert vocab.chars == ["."] + list("abcdefghijklmnopqrstuvwxyz")
    X, Y = build_examples(words, vocab, 3)
    assert X.shape == (228146, 3) and Y.shape == (228146,)
    assert X.dtype == np.int64 and Y.dtype == np.int64


def test_emma_examples_as_in_lecture(vocab):
    X, Y = build_examples(["emma"], vocab, 3)
    shown = [f"{vocab.decode(x)} ---> {vocab.decode([y])}" for x, y in zip(X, Y)]
    assert shown == ["... ---> e", "..e ---> m", ".em ---> m", "emm ---> a", "mma ---> ."]


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_examples_match_lecture_loop(words, vocab, block_size):
    sample = words[::7]
    X, Y = build_examples(sample, vocab, block_size)
    Xr, Yr = lecture_examples(sample, vocab, block_size)
    np.testing.assert_array_equal(X, Xr)
    np.testing.assert_array_equal(Y, Yr)


def test_examples_edge_cases(vocab):
    X, Y = build_examples([], vocab, 3)
    assert X.shape == (0, 3) and Y.shape == (0,)
    with pytest.raises(ValueError, match="block_size"):
        build_examples(["emma"], vocab, 0)
    with pytest.raises(ValueError, match="'A'"):
        build_examples(["Anna"], vocab, 3)


# --- splits -----------------------------------------------------------------------------------

def test_split_sizes_disjoint_and_covering(words):
    parts = split_indices(len(words), seed=42)
    assert [len(p) for p in parts] == [25626, 3203, 3204]
    allpos = np.concatenate(parts)
    assert len(set(allpos.tolist())) == len(words) == len(allpos)  # disjoint positions, all covered
    tr, dev, te = split_words(words, seed=42)
    assert (len(tr), len(dev), len(te)) == (25626, 3203, 3204)
    assert sorted(tr + dev + te) == sorted(words)
    assert tr == [words[i] for i in parts[0]]


def test_split_deterministic_per_seed(words):
    assert split_words(words, seed=42) == split_words(words, seed=42)
    assert split_words(words, seed=42)[0] != split_words(words, seed=7)[0]


def test_split_bad_fractions(words):
    with pytest.raises(ValueError, match="fractions"):
        split_words(words, fractions=(0.5, 0.1, 0.1))


def test_make_splits(words):
    d = make_splits(block_size=3, seed=42)
    assert isinstance(d, NamesData)
    assert d.vocab.size == 27 and d.block_size == 3
    assert (len(d.train_words), len(d.dev_words), len(d.test_words)) == (25626, 3203, 3204)
    assert len(d.Xtr) + len(d.Xdev) + len(d.Xte) == 228146
    assert d.Xtr.shape[1] == 3 and len(d.Xtr) == len(d.Ytr) and len(d.Xte) == len(d.Yte)
    assert len(d.Xtr) == sum(len(w) + 1 for w in d.train_words)


# --- vocabulary -------------------------------------------------------------------------------

def test_vocab_round_trip(vocab):
    assert vocab.decode(vocab.encode("emma")) == "emma"
    assert vocab.encode(".a") == [0, 1]
    assert Vocab.from_string(vocab.to_string()) == vocab
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    # through a numpy checkpoint, the way a model would save it
    assert Vocab.from_string(np.array(vocab.to_string())) == vocab
    assert vocab.stoi["a"] == 1 and vocab.itos[26] == "z"


def test_vocab_unknown_char_and_index(vocab):
    with pytest.raises(ValueError, match=r"'Z'.*not in the vocabulary"):
        vocab.encode("emZa")
    with pytest.raises(ValueError, match="27"):
        vocab.decode([1, 27])
    with pytest.raises(ValueError, match="not a vocabulary string"):
        Vocab.from_string("abc")


def test_vocab_non_ascii():
    v = Vocab.from_words(["zoë", "josé"])
    assert v.chars[0] == "." and v.chars[1:] == sorted(set("zoëjosé"))
    assert v.decode(v.encode("zoë")) == "zoë"


# --- bad data files ---------------------------------------------------------------------------

def test_load_words_strips_and_skips_blanks(tmp_path):
    p = tmp_path / "w.txt"
    p.write_bytes(b"\xef\xbb\xbf anna \r\n\n  \nbob\r\nzo\xc3\xab")
    assert load_words(p) == ["anna", "bob", "zoë"]


def test_missing_file(tmp_path):
    p = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="no such file") as e:
        load_words(p)
    assert isinstance(e.value, DataError) and "nope.txt" in str(e.value)


def test_directory(tmp_path):
    with pytest.raises(DataError, match="directory"):
        load_words(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="empty") as e:
        load_words(p)
    assert "empty.txt" in str(e.value)


def test_only_blank_lines(tmp_path):
    p = tmp_path / "blank.txt"
    p.write_text("\n   \n\t\n")
    with pytest.raises(DataError, match="no non-blank lines") as e:
        load_words(p)
    assert "blank.txt" in str(e.value)


def test_undecodable_bytes(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes(b"anna\nbob\njos\xe9\n")
    with pytest.raises(DataError, match="UTF-8") as e:
        load_words(p)
    msg = str(e.value)
    assert "latin1.txt" in msg and "line 3" in msg and "offset 12" in msg and r"\xe9" in msg


def test_boundary_token_in_word(tmp_path):
    p = tmp_path / "dots.txt"
    p.write_text("anna\n\nj.r.\nbob\n")
    with pytest.raises(DataError, match="reserved") as e:
        load_words(p)
    msg = str(e.value)
    assert "dots.txt" in msg and "line 3" in msg and "'j.r.'" in msg


# --- bigram baseline (makemore part 1) --------------------------------------------------------

def test_bigram_counts(words, vocab):
    N = bigram_counts(words, vocab)
    assert N.shape == (27, 27) and N.dtype == np.int64
    assert N.sum() == 228146  # one bigram per example at block size 1
    assert N[0].sum() == len(words) and N[:, 0].sum() == len(words)  # every word starts and ends
    assert N[vocab.stoi["a"], 0] == 6640  # 'a.' is the most common ending, as in the lecture
    assert N[0, 0] == 0


def test_bigram_nll(words, vocab):
    N = bigram_counts(words, vocab)
    assert round(bigram_nll(words, vocab, N, smoothing=1.0), 4) == 2.4546
    assert bigram_nll(words, vocab, N, smoothing=0.0) < 2.4546  # smoothing costs a little
    assert bigram_nll(["jq"], vocab, N, smoothing=0.0) == np.inf  # 'jq' never seen
    with pytest.raises(ValueError):
        bigram_nll(words, vocab, N, smoothing=-1)

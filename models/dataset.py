"""Data pipeline for the makemore character-level models: words, vocabulary, examples, splits."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import numpy as np

DEFAULT_DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "names.txt")

# '.' marks both the start and the end of a word, so it can never appear inside one.
BOUNDARY = "."


class DataError(ValueError):
    """A data file or word list that cannot be used."""


class DataFileNotFoundError(FileNotFoundError, DataError):
    """The data file does not exist (catchable as FileNotFoundError or DataError)."""


def load_words(path: str | os.PathLike = DEFAULT_DATA_PATH) -> list[str]:
    """Read a UTF-8 text file with one word per line, stripped, skipping blank lines."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileNotFoundError(errno.ENOENT, "no such file", path)
    if os.path.isdir(path):
        raise DataError(f"{path!r} is a directory, not a text file")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise DataError(f"{path!r} is empty")
    # Decode ourselves rather than via open(encoding=...) so the error can name the line.
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # ignore a UTF-8 byte-order mark
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        line = data.count(b"\n", 0, offset) + 1
        bad = data[offset:start + e.end]
        raise DataError(f"{path!r} is not valid UTF-8: line {line}, byte offset {offset}, "
                        f"bad bytes {bad!r} ({e.reason})") from None
    words = []
    # split on '\n' only: str.splitlines() would also split on form feeds, U+2028 and the like.
    for lineno, line in enumerate(text.split("\n"), start=1):
        word = line.strip()
        if not word:
            continue
        if BOUNDARY in word:
            raise DataError(f"{path!r} line {lineno}: word {word!r} contains {BOUNDARY!r}, "
                            f"which is reserved for the start/end token")
        words.append(word)
    if not words:
        raise DataError(f"{path!r} has no non-blank lines")
    return words


class Vocab:
    """Character vocabulary with the boundary token '.' at index 0 and sorted characters after it."""

    def __init__(self, chars):
        """Build from the word characters (without '.'); they are deduplicated and sorted."""
        chars = sorted(set(chars))
        if BOUNDARY in chars:
            raise ValueError(f"{BOUNDARY!r} is reserved for the start/end token")
        if any(len(c) != 1 for c in chars):
            raise ValueError("vocabulary entries must be single characters")
        self.itos = [BOUNDARY] + chars
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_words(cls, words) -> "Vocab":
        """Vocabulary of every character used in the words."""
        return cls(set("".join(words)))

    @property
    def chars(self) -> list[str]:
        """All tokens in index order, '.' first."""
        return list(self.itos)

    @property
    def size(self) -> int:
        """Number of tokens including '.'."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab({self.to_string()!r})"

    def encode(self, s: str) -> list[int]:
        """Indices of the characters of s; unknown characters raise ValueError."""
        try:
            return [self.stoi[c] for c in s]
        except KeyError as e:
            c = e.args[0]
            raise ValueError(f"character {c!r} (U+{ord(c):04X}) in {s!r} is not in the vocabulary") from None

    def decode(self, ixs) -> str:
        """String for a sequence of indices; out-of-range indices raise ValueError."""
        out = []
        for i in ixs:
            i = int(i)
            if not 0 <= i < self.size:
                raise ValueError(f"index {i} is outside the vocabulary (size {self.size})")
            out.append(self.itos[i])
        return "".join(out)

    def to_string(self) -> str:
        """All tokens as one string ('.' first), easy to store in a numpy checkpoint."""
        return "".join(self.itos)

    @classmethod
    def from_string(cls, s) -> "Vocab":
        """Inverse of to_string (also accepts a 0-d numpy string array)."""
        s = str(s)
        if not s.startswith(BOUNDARY) or len(set(s)) != len(s) or list(s[1:]) != sorted(s[1:]):
            raise ValueError(f"not a vocabulary string: {s!r}")
        return cls(s[1:])

    def to_dict(self) -> dict:
        """Plain dict form: {'chars': to_string()}."""
        return {"chars": self.to_string()}

    @classmethod
    def from_dict(cls, d) -> "Vocab":
        """Inverse of to_dict."""
        return cls.from_string(d["chars"])


def build_examples(words, vocab: Vocab, block_size: int = 3):
    """(X, Y) int64 arrays: each next character with its block_size previous ones, '.'-padded."""
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    # Lay every word out as [0]*block_size + word + [0] in one flat array; then each target's
    # context is simply the block_size entries before it. One pass, no per-example Python loop.
    seq, targets = [], []
    for w in words:
        ixs = vocab.encode(w)
        base = len(seq) + block_size
        targets.extend(range(base, base + len(ixs) + 1))
        seq.extend([0] * block_size)
        seq.extend(ixs)
        seq.append(0)
    seq = np.asarray(seq, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    X = seq[targets[:, None] + np.arange(-block_size, 0)] if len(targets) else np.zeros((0, block_size), np.int64)
    Y = seq[targets] if len(targets) else np.zeros(0, np.int64)
    return X, Y


def split_indices(n: int, seed: int = 42, fractions=(0.8, 0.1, 0.1)):
    """Seeded permutation of range(n) cut into train/dev/test index arrays."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    perm = np.random.default_rng(seed).permutation(n)
    # Same cut points as the lecture: n1 = int(0.8*n), n2 = int(0.9*n).
    n1 = int(fractions[0] * n)
    n2 = int((fractions[0] + fractions[1]) * n)
    return perm[:n1], perm[n1:n2], perm[n2:]


def split_words(words, seed: int = 42, fractions=(0.8, 0.1, 0.1)):
    """Deterministically shuffle the words and split them (by word) into train/dev/test lists."""
    return tuple([words[i] for i in part] for part in split_indices(len(words), seed, fractions))


@dataclass
class NamesData:
    """Vocabulary, word splits and example arrays for one data file."""

    vocab: Vocab
    block_size: int
    train_words: list
    dev_words: list
    test_words: list
    Xtr: np.ndarray
    Ytr: np.ndarray
    Xdev: np.ndarray
    Ydev: np.ndarray
    Xte: np.ndarray
    Yte: np.ndarray


def make_splits(path=DEFAULT_DATA_PATH, block_size: int = 3, seed: int = 42, fractions=(0.8, 0.1, 0.1)) -> NamesData:
    """Load a words file and build the vocab (from all words) and train/dev/test examples."""
    words = load_words(path)
    vocab = Vocab.from_words(words)
    tr, dev, te = split_words(words, seed, fractions)
    Xtr, Ytr = build_examples(tr, vocab, block_size)
    Xdev, Ydev = build_examples(dev, vocab, block_size)
    Xte, Yte = build_examples(te, vocab, block_size)
    return NamesData(vocab, block_size, tr, dev, te, Xtr, Ytr, Xdev, Ydev, Xte, Yte)


def _bigram_pairs(words, vocab: Vocab):
    """Flat arrays (a, b) of every bigram, with '.' before and after each word."""
    X, Y = build_examples(words, vocab, block_size=1)
    return X[:, 0], Y


def bigram_counts(words, vocab: Vocab) -> np.ndarray:
    """(vocab.size, vocab.size) int64 matrix N[a, b] = number of times b follows a."""
    a, b = _bigram_pairs(words, vocab)
    V = vocab.size
    return np.bincount(a * V + b, minlength=V * V).astype(np.int64).reshape(V, V)


def bigram_nll(words, vocab: Vocab, N: np.ndarray, smoothing: float = 1.0) -> float:
    """Average negative log likelihood per character of the words under add-k smoothed counts N."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    a, b = _bigram_pairs(words, vocab)
    if len(a) == 0:
        raise ValueError("no words to evaluate")
    P = np.asarray(N, dtype=np.float64) + smoothing
    with np.errstate(divide="ignore", invalid="ignore"):  # zero counts without smoothing -> inf, not a warning
        P = P / P.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(P[a, b])))

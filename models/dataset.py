"""Data pipeline for the makemore character-level models: words, vocabulary, examples, splits."""

from __future__ import annotations

import errno
import os
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np

DEFAULT_DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "names.txt")

# '.' marks both the start and the end of a word, so it can never appear inside one.
BOUNDARY = "."
EXPECTED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz")  # what names.txt holds; others draw a warning
# Longer lines draw a warning: sampling stops at 50 characters (sample.MAX_LEN), and the longest
# bundled name has 15, so a longer line is almost always a pasted paragraph, not a name.
DEFAULT_MAX_LINE_LENGTH = 50


class DataError(ValueError):
    """A data file or word list that cannot be used."""


class DataFileNotFoundError(FileNotFoundError, DataError):
    """The data file does not exist (catchable as FileNotFoundError or DataError)."""


def normalize(word: str, lowercase=False, nfc=False) -> str:
    """NFC first (a letter + combining accent becomes one character), then lower case."""
    if nfc:
        word = unicodedata.normalize("NFC", word)
    return word.lower() if lowercase else word


def load_words(path: str | os.PathLike = DEFAULT_DATA_PATH, lowercase=False, nfc=False) -> list[str]:
    """Read a UTF-8 text file with one word per line, stripped, skipping blank lines."""
    return load_lines(path, lowercase, nfc)[0]


def load_lines(path: str | os.PathLike = DEFAULT_DATA_PATH, lowercase=False, nfc=False):
    """(words, their 1-based line numbers) of a UTF-8 file; see load_words."""
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
    words, linenos = [], []
    # split on '\n' only: str.splitlines() would also split on form feeds, U+2028 and the like.
    for lineno, line in enumerate(text.split("\n"), start=1):
        word = normalize(line.strip(), lowercase, nfc)
        if not word:
            continue
        if BOUNDARY in word:
            raise DataError(f"{path!r} line {lineno}: word {word!r} contains {BOUNDARY!r}, "
                            f"which is reserved for the start/end token")
        words.append(word)
        linenos.append(lineno)
    if not words:
        raise DataError(f"{path!r} has no non-blank lines")
    return words, linenos


def data_warnings(words, linenos=None, max_line_length=DEFAULT_MAX_LINE_LENGTH, splits=None) -> list[str]:
    """Warnings about characters outside a-z (with counts and an example line) and about lines
    longer than max_line_length (naming the split each lands in, given splits = {name: words});
    empty when the data looks like names.txt."""
    linenos = linenos or range(1, len(words) + 1)
    counts = Counter(c for w in words for c in w if c not in EXPECTED_CHARS)
    out = []
    if counts:
        first = {}
        for w, n in zip(words, linenos):
            for c in set(w) & counts.keys():
                first.setdefault(c, (n, w))
        parts = []
        for c, k in counts.most_common(12):
            n, w = first[c]
            parts.append(f"{c!r} (U+{ord(c):04X}) x{k:,}, e.g. line {n}: {_clip(w)!r}")
        more = f"; and {len(counts) - 12} more" if len(counts) > 12 else ""
        hint = []
        if any(c.isupper() for c in counts):
            hint.append("--lowercase folds case")
        if any(unicodedata.combining(c) for c in counts):
            hint.append("--nfc joins combining accents to their letters")
        out.append(f"warning: {len(counts)} characters outside a-z become tokens: " + "; ".join(parts) + more
                   + (f" ({'; '.join(hint)})" if hint else ""))
    long = [(len(w), n, w) for w, n in zip(words, linenos) if len(w) > max_line_length]
    if long:
        lengths = sorted(len(w) for w in words)
        split_of = {w: name for name, ws in (splits or {}).items() for w in ws if len(w) > max_line_length}
        where = []
        for k, n, w in sorted(long, key=lambda t: -t[0])[:5]:
            where.append(f"line {n} ({k:,} characters" + (f", in {split_of[w]})" if w in split_of else ")"))
        out.append(f"warning: {len(long)} line(s) longer than {max_line_length} characters (median "
                   f"{lengths[len(lengths) // 2]}): {', '.join(where)}; such a line outweighs many names in "
                   f"the split it lands in (raise the limit with --max-line-length)")
    return out


def _clip(s, n=40):
    return s if len(s) <= n else s[:n] + "..."


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


def make_splits(path=DEFAULT_DATA_PATH, block_size: int = 3, seed: int = 42, fractions=(0.8, 0.1, 0.1),
                lowercase=False, nfc=False, words=None) -> NamesData:
    """Load a words file (or take `words`) and build the vocab (from all words) and the
    train/dev/test examples."""
    words = load_words(path, lowercase, nfc) if words is None else words
    vocab = Vocab.from_words(words)
    tr, dev, te = split_words(words, seed, fractions)
    Xtr, Ytr = build_examples(tr, vocab, block_size)
    Xdev, Ydev = build_examples(dev, vocab, block_size)
    Xte, Yte = build_examples(te, vocab, block_size)
    return NamesData(vocab, block_size, tr, dev, te, Xtr, Ytr, Xdev, Ydev, Xte, Yte)

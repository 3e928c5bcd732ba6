"""A run's state -- model, optimizer, schedule, RNG, losses -- and its checkpoint: save, load, resume.

Resuming is exact: a checkpoint holds the weights, optimizer and scheduler state, the
minibatch Generator's state, the step, the per-step losses and the config (which fixes the
data split), so an interrupted-then-resumed run reproduces the uninterrupted run bit for bit.
It is also self-contained for sampling (vocabulary, training words for the "(in train)" marks),
and names its data file by content hash, so a moved clone or a renamed file is found again
(the bundled names.txt, or --data PATH) and a different file is refused.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace

import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import checkpoint, optim

from .config import FIXED_ON_RESUME, RunError, TrainConfig, check_memory, schedule_note
from .dataset import DEFAULT_DATA_PATH, NamesData, Vocab, data_warnings, load_lines, make_splits
from .mlp import MLPLanguageModel
from .rundir import atomic_write

CKPT_NAME = "ckpt.npz"
LOSSES_NAME = "losses.npy"
CKPT_KIND = "tinygrad_mm-names-mlp"


@dataclass
class Run:
    """A training run in progress: model, optimizer, scheduler, RNG, data and the loss log."""
    config: TrainConfig
    data: NamesData
    data_sha256: str
    model: MLPLanguageModel
    optimizer: optim.Optimizer
    scheduler: optim.StepDecay
    rng: tg.Generator               # draws the minibatch indices
    step: int = 0
    losses: list = field(default_factory=list)       # per-step training loss
    dev_history: list = field(default_factory=list)  # [step, dev loss]
    interrupted: bool = False
    notes: list = field(default_factory=list)        # data and schedule warnings, for the user


def check_device(device):
    """Raise RunError (with the library's reason) when the device cannot be used."""
    try:
        tg.zeros(1, device=device)
    except (RuntimeError, ValueError, ImportError) as e:
        raise RunError(str(e)) from None


def model_device(model) -> str:
    return model.parameters()[0].device


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_data(config: TrainConfig, notes=None) -> NamesData:
    """The train/dev/test split the config defines; each split must hold at least one example.
    Warnings about the data (odd characters, outlier lines) are appended to `notes`."""
    words, linenos = load_lines(config.data, config.lowercase, config.nfc)
    data = make_splits(block_size=config.block_size, seed=config.seed, words=words)
    if notes is not None:
        splits = {"train": data.train_words, "dev": data.dev_words, "test": data.test_words}
        notes.extend(data_warnings(words, linenos, config.max_line_length, splits))
    sizes = [len(data.train_words), len(data.dev_words), len(data.test_words)]
    if not all(sizes):
        raise RunError(f"{config.data!r} has {sum(sizes)} words: too few for an 80/10/10 split "
                       f"(train/dev/test got {sizes[0]}/{sizes[1]}/{sizes[2]}; each needs at least one)")
    return data


def build_model(config: TrainConfig, vocab_size, generator=None) -> MLPLanguageModel:
    return MLPLanguageModel(config.mlp_config(vocab_size), generator=generator, device=config.device)


def new_run(config: TrainConfig) -> Run:
    """A fresh run: data split, seeded init, optimizer and lr schedule."""
    config = config.resolved()
    check_device(config.device)
    notes = []
    data = load_data(config, notes)
    check_memory(config, data.vocab.size, data.Xtr.nbytes + data.Ytr.nbytes)
    note = schedule_note(config)
    if note:
        notes.append(note)
    g = tg.Generator(config.seed)  # one stream: model init first, then minibatch indices
    model = build_model(config, data.vocab.size, g)
    make = optim.SGD if config.optimizer == "sgd" else optim.Adam
    opt = make(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    values = [config.lr * config.decay_factor ** k for k in range(len(config.decay_at) + 1)]
    sched = optim.StepDecay(opt, config.decay_at, values)
    return Run(config, data, file_sha256(config.data), model, opt, sched, g, notes=notes)


def _text_array(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


def checkpoint_state(run: Run) -> dict:
    """The nested dict checkpoint.save writes. The generator state is stored as get_state()
    returns it (a string goes into the JSON metadata, an array into its own member)."""
    return {"kind": CKPT_KIND, "config": run.config.to_dict(), "vocab": run.data.vocab.to_string(),
            "data_sha256": run.data_sha256, "train_words": _text_array("\n".join(run.data.train_words)),
            "step": run.step, "rng": run.rng.get_state(),
            "model": dict(run.model.state_dict()), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "losses": np.asarray(run.losses, dtype=np.float64),
            "dev_history": [list(x) for x in run.dev_history]}


def save_run(run: Run, out_dir) -> str:
    """Write out_dir/ckpt.npz and out_dir/losses.npy, each atomically."""
    path = checkpoint.save(os.path.join(out_dir, CKPT_NAME), checkpoint_state(run))
    losses = np.asarray(run.losses, dtype=np.float64)
    atomic_write(os.path.join(out_dir, LOSSES_NAME), lambda f: np.save(f, losses))
    return path


def ckpt_path(path_or_dir) -> str:
    """A checkpoint file path from either the file or the run folder."""
    p = os.fspath(path_or_dir)
    return os.path.join(p, CKPT_NAME) if os.path.isdir(p) else p


def read_checkpoint(path) -> dict:
    """checkpoint.load plus a check that it is a name-model checkpoint."""
    path = ckpt_path(path)
    if not os.path.exists(path):
        raise RunError(f"no checkpoint at {path!r} (train first, or pass --out-dir/--ckpt)")
    ck = checkpoint.load(path)
    if ck.get("kind") != CKPT_KIND:
        raise RunError(f"{path!r} is a tinygrad_mm checkpoint, but not of the name model")
    ck["path"] = path
    return ck


def resolve_data(ck, data=None) -> str:
    """The data file a checkpoint was trained on, found by content hash: `data` when given,
    else the stored path, else the bundled names.txt (a moved clone or a new venv)."""
    want, stored = ck["data_sha256"], ck["config"]["data"]
    where = f"checkpoint {ck['path']} was trained on {stored!r} (sha256 {want[:12]}...)"
    if data is not None:
        if not os.path.isfile(data):
            raise RunError(f"--data {data!r}: no such file ({where})")
        sha = file_sha256(data)
        if sha != want:
            raise RunError(f"--data {data!r} is not the file that {where}: its sha256 is {sha[:12]}...")
        return os.path.abspath(data)
    if os.path.isfile(stored):
        sha = file_sha256(stored)
        if sha != want:
            raise RunError(f"the data file {stored!r} changed since the checkpoint {ck['path']} was written "
                           f"(sha256 {want[:12]}... then, {sha[:12]}... now), so the split cannot be "
                           f"reproduced; restore the file, or pass --data PATH to a copy of the original")
        return stored
    if os.path.isfile(DEFAULT_DATA_PATH) and file_sha256(DEFAULT_DATA_PATH) == want:
        return DEFAULT_DATA_PATH
    raise RunError(f"{where}, which no longer exists; pass --data PATH to that file "
                   f"(it is recognised by its content, so any copy will do)")


def _check_vocab(ck, vocab):
    if vocab.to_string() != ck["vocab"]:
        raise RunError(f"the data of checkpoint {ck['path']} now gives the vocabulary {vocab.to_string()!r}, "
                       f"not {ck['vocab']!r}")


def model_from_checkpoint(ck, device=None):
    """(config, model, vocab) of a checkpoint, without reading the data file."""
    config = TrainConfig.from_dict(ck["config"])
    if device is not None:
        config = replace(config, device=device)
    check_device(config.device)
    vocab = Vocab.from_string(ck["vocab"])
    model = build_model(config, vocab.size)
    model.load_state_dict(ck["model"])
    return config, model, vocab


def train_words(ck) -> list:
    """The training split's words (for marking samples), from the checkpoint itself when it has
    them (checkpoints written before they were stored need the data file)."""
    if "train_words" in ck:
        text = ck["train_words"].tobytes().decode("utf-8")
        return text.split("\n") if text else []
    config = replace(TrainConfig.from_dict(ck["config"]), data=resolve_data(ck))
    return load_data(config).train_words


def load_model(path, device=None, data=None):
    """(config, model, data, checkpoint dict) of a saved run, for eval (reads the data file)."""
    ck = read_checkpoint(path)
    config, model, vocab = model_from_checkpoint(ck, device)
    config = replace(config, data=resolve_data(ck, data))
    names = load_data(config)
    _check_vocab(ck, names.vocab)
    return config, model, names, ck


def resume_run(path, data=None, **overrides) -> Run:
    """Rebuild a run from its checkpoint; only steps/eval_every/ckpt_every/device (and the data
    file's location, checked by content) may change."""
    ck = read_checkpoint(path)
    saved = TrainConfig.from_dict(ck["config"])
    bad = [f"--{k.replace('_', '-')} {v!r} (checkpoint: {getattr(saved, k)!r})"
           for k, v in overrides.items() if k in FIXED_ON_RESUME and v != getattr(saved, k)]
    if bad:
        raise RunError("cannot change these options when resuming: " + "; ".join(bad))
    changes = {k: v for k, v in overrides.items() if k not in FIXED_ON_RESUME and k != "data"}
    run = new_run(replace(saved, data=resolve_data(ck, data), **changes))
    _check_vocab(ck, run.data.vocab)
    run.model.load_state_dict(ck["model"])
    run.optimizer.load_state_dict(ck["optimizer"])
    run.scheduler.load_state_dict(ck["scheduler"])
    run.rng.set_state(ck["rng"])
    run.step = int(ck["step"])
    run.losses = [float(x) for x in ck["losses"]]
    run.dev_history = [list(x) for x in ck["dev_history"]]
    if run.step > run.config.steps:
        raise RunError(f"the checkpoint is at step {run.step:,}, past --steps {run.config.steps:,}")
    return run

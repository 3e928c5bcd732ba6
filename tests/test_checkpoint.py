"""tinygrad_mm.checkpoint: bit-identical round trips, atomic saves, and refusing anything else."""
import os
import pickle

import numpy as np
import pytest

import tinygrad_mm as tg
from tinygrad_mm import Tensor, backend, checkpoint, nn, optim
from tinygrad_mm.checkpoint import CheckpointError


def sample_state():
    rng = np.random.default_rng(0)
    gen = tg.Generator(123)
    tg.randn(5, generator=gen)                       # a state in the middle of the stream
    return {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": np.array([0.1, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1.7976931348623157e308]),
        "i64": np.array([[np.iinfo(np.int64).min, -1], [0, np.iinfo(np.int64).max]], dtype=np.int64),
        "u8": np.arange(256, dtype=np.uint8),
        "scalar0d": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float64),
        "transposed": np.arange(12, dtype=np.float64).reshape(3, 4).T,   # not C-contiguous
        "nested": {"a": {"b": {"c": np.array([1, 2, 3], dtype=np.int64)}, "empty": {}}, "x": 1},
        "list": [1, 2.5, "three", None, [True, False]],
        "list_of_arrays": [np.ones(2, np.float32), {"w": np.zeros(1, np.int64)}, 7],
        "none": None,
        "string": "héllo \"world\" \n ✓",
        "int": 2 ** 62, "float": 0.1, "bool": True, "nan": float("nan"),
        "generator": gen.get_state(),
        "step": np.int64(42),                        # a numpy scalar: stored as a number
    }


def assert_same(a, b, where="state"):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == np.ascontiguousarray(b).tobytes(), where      # bit for bit (NaN, -0.0)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert type(b) is type(a.item() if isinstance(a, np.generic) else a) and a == b, where


def test_round_trip_is_bit_identical(tmp_path):
    state = sample_state()
    path = checkpoint.save(tmp_path / "ck.npz", state)
    assert path == str(tmp_path / "ck.npz")
    loaded = checkpoint.load(path)
    assert_same(state, loaded)
    assert loaded["i64"].dtype == np.int64 and loaded["u8"].dtype == np.uint8
    g1, g2 = tg.Generator(), tg.Generator()
    g1.set_state(state["generator"])
    g2.set_state(loaded["generator"])
    np.testing.assert_array_equal(tg.randn(10, generator=g1).numpy(), tg.randn(10, generator=g2).numpy())
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        checkpoint.save(tmp_path / "a.npz", {"x": 1})
        np.savez(tmp_path / "b.npz", x=1)
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "a.npz").st_mode & 0o777
    assert mode == os.stat(tmp_path / "b.npz").st_mode & 0o777 == 0o644   # not mkstemp's 0600


def test_model_optimizer_and_generator_resume(tmp_path):
    def model():
        g = tg.Generator(0)
        return nn.Sequential(nn.Embedding(27, 4, generator=g), nn.Flatten(), nn.Linear(12, 16, generator=g),
                             nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 27, generator=g))

    def train(m, opt, gen, steps):
        losses = []
        for _ in range(steps):
            X = tg.randint(0, 27, (8, 3), generator=gen)
            Y = tg.randint(0, 27, (8,), generator=gen)
            loss = nn.cross_entropy(m(X), Y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    m, gen = model(), tg.Generator(7)
    opt = optim.AdamW(m.parameters(), lr=1e-2)
    train(m, opt, gen, 5)
    checkpoint.save(tmp_path / "run", {"model": m.state_dict(), "optim": opt.state_dict(),
                                       "gen": gen.get_state(), "step": 5})
    straight = train(m, opt, gen, 5)

    ck = checkpoint.load(tmp_path / "run")
    m2 = model()
    m2.load_state_dict(ck["model"])
    opt2 = optim.AdamW(m2.parameters())
    opt2.load_state_dict(ck["optim"])
    gen2 = tg.Generator()
    gen2.set_state(ck["gen"])
    assert ck["step"] == 5
    assert train(m2, opt2, gen2, 5) == straight
    for (n, a), (_, b) in zip(m._named_tensors(), m2._named_tensors()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=n)


def test_tensors_are_saved_as_arrays(tmp_path):
    t = Tensor(np.arange(3, dtype=np.float64), requires_grad=True)
    checkpoint.save(tmp_path / "t.npz", {"t": t})
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "t.npz")["t"], t.detach().numpy())


@pytest.mark.parametrize("name", ["x.tmp", "ckpt", "model.pt", "weird.npz.bak"])
def test_path_is_used_exactly(tmp_path, name):
    checkpoint.save(tmp_path / name, {"a": np.ones(2)})
    assert os.listdir(tmp_path) == [name]               # no ".npz" appended, no temp file left
    np.testing.assert_array_equal(checkpoint.load(tmp_path / name)["a"], np.ones(2))
    checkpoint.save(str(tmp_path / name), {"a": np.zeros(2)})   # overwriting works too
    assert os.listdir(tmp_path) == [name]
    np.testing.assert_array_equal(checkpoint.load(str(tmp_path / name))["a"], np.zeros(2))


# -- atomicity ------------------------------------------------------------------------------------
def crashing_savez(exc):
    def fake(f, **members):
        f.write(b"PK\x03\x04 half of a zip file")    # part of the archive reaches the temp file ...
        f.flush()
        raise exc                                     # ... then the process dies
    return fake


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt(), MemoryError()])
def test_crash_mid_save_keeps_previous_file(tmp_path, monkeypatch, exc):
    path = tmp_path / "ck.npz"
    checkpoint.save(path, {"v": np.arange(5), "tag": "old"})
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", crashing_savez(exc))
    with pytest.raises(type(exc)):
        checkpoint.save(path, {"v": np.arange(6), "tag": "new"})
    assert os.listdir(tmp_path) == ["ck.npz"]           # no temp file left behind
    assert path.read_bytes() == before
    assert checkpoint.load(path)["tag"] == "old"


def test_crash_on_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", crashing_savez(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / "ck.npz", {"v": np.arange(3)})
    assert os.listdir(tmp_path) == []


def test_crash_at_replace_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck"
    checkpoint.save(path, {"tag": "old"})

    def boom(src, dst):
        raise OSError("replace failed")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        checkpoint.save(path, {"tag": "new"})
    assert os.listdir(tmp_path) == ["ck"] and checkpoint.load(path)["tag"] == "old"


def test_bad_state_is_refused_before_writing(tmp_path):
    path = tmp_path / "ck.npz"
    for state, exc in (([1, 2], TypeError),
                       ({"a": {1, 2}}, TypeError),
                       ({"a": object()}, TypeError),
                       ({"a": np.array([1, None], dtype=object)}, TypeError),
                       ({"a/b": 1}, ValueError),
                       ({"__meta__": np.zeros(2)}, ValueError),
                       ({"a": {"__array__": "x"}}, ValueError)):
        with pytest.raises(exc):
            checkpoint.save(path, state)
    assert os.listdir(tmp_path) == []


# -- refusing what is not a checkpoint -------------------------------------------------------------
def refuses(path, pattern=None):
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert str(path) in str(e.value)                    # names the file
    if pattern:
        assert pattern in str(e.value), str(e.value)
    return str(e.value)


def test_truncated_file_is_refused(tmp_path):
    good = tmp_path / "good.npz"
    checkpoint.save(good, sample_state())
    data = good.read_bytes()
    cut_points = sorted({1, 2, 4, 10, 30, 100, len(data) // 3, len(data) // 2, len(data) - 100,
                         len(data) - 22, len(data) - 1} | set(range(0, len(data), max(1, len(data) // 40))))
    for cut in cut_points:
        if cut == 0:
            continue
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        refuses(bad)


def test_corrupt_member_is_refused(tmp_path):
    good = tmp_path / "good.npz"
    checkpoint.save(good, {"w": np.arange(1000, dtype=np.float64)})
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF                      # a flipped byte inside the array's data
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    refuses(bad)


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    refuses(tmp_path / "e.npz", "empty")


def test_foreign_npz_is_refused(tmp_path):
    np.savez(tmp_path / "foreign.npz", a=np.arange(3))
    refuses(tmp_path / "foreign.npz", "not a tinygrad_mm checkpoint")
    np.savez(tmp_path / "meta.npz", __meta__=np.frombuffer(b'{"format": "other"}', dtype=np.uint8))
    refuses(tmp_path / "meta.npz", "format")
    np.savez(tmp_path / "garbage_meta.npz", __meta__=np.array([1e300, -1.0]))
    refuses(tmp_path / "garbage_meta.npz", "corrupt")


def test_other_version_is_refused(tmp_path):
    meta = b'{"format": "tinygrad_mm-checkpoint", "version": 99, "state": {}}'
    np.savez(tmp_path / "v99.npz", __meta__=np.frombuffer(meta, dtype=np.uint8))
    refuses(tmp_path / "v99.npz", "version 99")
    meta = b'{"format": "tinygrad_mm-checkpoint", "version": 1, "state": {"w": {"__array__": "w"}}}'
    np.savez(tmp_path / "missing.npz", __meta__=np.frombuffer(meta, dtype=np.uint8))
    refuses(tmp_path / "missing.npz", "missing")
    meta = b'{"format": "tinygrad_mm-checkpoint", "version": 1, "state": {"w": {"__array__": [1]}}}'
    np.savez(tmp_path / "badref.npz", __meta__=np.frombuffer(meta, dtype=np.uint8))
    refuses(tmp_path / "badref.npz", "corrupt")


def test_text_and_npy_files_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("just some text\n")
    refuses(tmp_path / "notes.txt", "not an .npz")
    np.save(tmp_path / "arr.npy", np.arange(4))
    refuses(tmp_path / "arr.npy", ".npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refuses(tmp_path / "obj.npy")


class Evil:
    ran = False

    def __reduce__(self):
        return (Evil._trigger, ())

    @staticmethod
    def _trigger():
        Evil.ran = True
        return "pwned"


def test_object_arrays_are_refused_and_never_unpickled(tmp_path, monkeypatch):
    np.savez(tmp_path / "obj.npz", a=np.array([1, "x", None], dtype=object))
    refuses(tmp_path / "obj.npz", "object arrays")
    # a checkpoint-looking file whose member is a pickle that would run code when unpickled
    good = tmp_path / "good.npz"
    checkpoint.save(good, {"w": np.zeros(2)})
    with np.load(good) as z:
        members = {k: z[k] for k in z.files}
    members["w"] = np.array([Evil()], dtype=object)
    np.savez(tmp_path / "evil.npz", **members)
    calls = []
    real_loads = pickle.loads
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a) or real_loads(*a, **k))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append(a) or pytest.fail("unpickled"))
    refuses(tmp_path / "evil.npz", "object arrays")
    assert not Evil.ran and not calls


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        checkpoint.load(tmp_path / "nope.npz")
    assert not issubclass(CheckpointError, FileNotFoundError) and issubclass(CheckpointError, ValueError)


# -- devices ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not backend.cuda_available(), reason=f"no GPU: {backend.CUPY_UNAVAILABLE_REASON}")
def test_cupy_round_trip(tmp_path):
    cp = backend.module_for("cuda")
    state = {"a": cp.arange(6, dtype=cp.float32).reshape(2, 3), "b": {"c": cp.asarray([1, 2], dtype=cp.int64)}}
    checkpoint.save(tmp_path / "gpu.npz", state)
    loaded = checkpoint.load(tmp_path / "gpu.npz")
    assert type(loaded["a"]) is np.ndarray              # loads on the host ...
    np.testing.assert_array_equal(loaded["a"], cp.asnumpy(state["a"]))
    np.testing.assert_array_equal(loaded["b"]["c"], cp.asnumpy(state["b"]["c"]))
    m = nn.Linear(3, 2, device="cuda")                  # ... and a model on the GPU takes it back there
    checkpoint.save(tmp_path / "m.npz", {"m": m.state_dict()})
    m2 = nn.Linear(3, 2, generator=tg.Generator(9), device="cuda")
    m2.load_state_dict(checkpoint.load(tmp_path / "m.npz")["m"])
    assert m2.weight.device == "cuda"
    np.testing.assert_array_equal(m2.weight.detach().numpy(), m.weight.detach().numpy())
    cpu = nn.Linear(3, 2, generator=tg.Generator(9))
    cpu.load_state_dict(m.state_dict())                 # cupy state dict into a numpy model
    np.testing.assert_array_equal(cpu.weight.detach().numpy(), m.weight.detach().numpy())

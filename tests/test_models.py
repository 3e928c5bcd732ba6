"""Tests for models/train.py, run.py and sample.py: forward, training, exact resume, sampling, baselines."""
import os

import numpy as np
import pytest

from models.dataset import DEFAULT_DATA_PATH, Vocab, build_examples, load_words
from models.mlp import MLPConfig, MLPLanguageModel
from models.sample import mark_names, sample_names
from models.bigram import train_neural_bigram
from models.config import RunError, TrainConfig
from models.run import CKPT_NAME, LOSSES_NAME, load_model, new_run, read_checkpoint, resume_run
from models.train import evaluate, fit, lr_find, smooth, suggest_lr
from tinygrad_mm import creation
from tinygrad_mm import no_grad as tg_no_grad


@pytest.fixture(scope="module")
def names_file(tmp_path_factory):
    """The first 1000 bundled names: enough for every split, small enough to be fast."""
    path = tmp_path_factory.mktemp("data") / "names.txt"
    path.write_text("\n".join(load_words(DEFAULT_DATA_PATH)[:1000]) + "\n", encoding="utf-8")
    return str(path)


def tiny(names_file, **kw):
    """A small, fast config on the small file."""
    base = dict(data=names_file, steps=120, eval_every=40, ckpt_every=40, n_hidden=32)
    return TrainConfig(**{**base, **kw})


def numpy_forward(model, X, Y):
    """The lecture's forward pass written directly in numpy (float64)."""
    C = model.embedding.weight.detach().numpy().astype(np.float64)
    W1, b1 = model.hidden.weight.detach().numpy(), model.hidden.bias.detach().numpy()
    W2, b2 = model.output.weight.detach().numpy(), model.output.bias.detach().numpy()
    emb = C[X]                                              # (B, T, C)
    h = np.tanh(emb.reshape(len(X), -1) @ W1.T + b1)        # (B, H)
    logits = h @ W2.T + b2                                  # (B, V)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return logits, -logp[np.arange(len(Y)), Y].mean()


def test_forward_matches_numpy():
    words = load_words()[:50]
    vocab = Vocab.from_words(words)
    X, Y = build_examples(words, vocab, block_size=4)
    model = MLPLanguageModel(MLPConfig(vocab.size, 4, 6, 20), generator=creation.Generator(3))
    # give the output layer real weights: the init makes it ~0, which would hide mistakes
    model.output.weight.data = np.random.default_rng(0).standard_normal(model.output.weight.shape).astype(np.float32)
    logits, loss = model(X, Y)
    ref_logits, ref_loss = numpy_forward(model, X, Y)
    np.testing.assert_allclose(logits.detach().numpy(), ref_logits, rtol=1e-4, atol=1e-4)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-5)


def test_evaluate_is_chunk_independent(names_file):
    run = new_run(tiny(names_file))
    whole = evaluate(run.model, run.data.Xdev, run.data.Ydev, chunk=10**6)
    assert evaluate(run.model, run.data.Xdev, run.data.Ydev, chunk=7) == pytest.approx(whole, rel=1e-6)
    assert whole == pytest.approx(np.log(run.data.vocab.size), abs=0.1)  # init: near uniform


def test_short_training_lowers_dev_loss(names_file):
    run = new_run(tiny(names_file, steps=300, n_hidden=64))
    before = evaluate(run.model, run.data.Xdev, run.data.Ydev)
    fit(run)
    assert run.step == 300 and len(run.losses) == 300
    assert evaluate(run.model, run.data.Xdev, run.data.Ydev) < before - 0.4
    assert [s for s, _ in run.dev_history] == [40 * k for k in range(1, 8)]


def test_config_resolution():
    c = TrainConfig(steps=1000).resolved()
    assert (c.lr, c.decay_at) == (0.1, [500])  # the lecture: 0.1, then 0.01 half-way
    assert TrainConfig(optimizer="adam").resolved().lr == 3e-3
    with pytest.raises(RunError, match="optimizer"):
        TrainConfig(optimizer="rmsprop").resolved()


def _weights(run):
    return {k: v.copy() for k, v in run.model.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stop_then_resume_is_bit_exact(names_file, tmp_path, optimizer):
    # decay at step 90: the lr change falls after the resume point, so the scheduler state matters
    cfg = tiny(names_file, optimizer=optimizer, decay_at=[90])
    straight = fit(new_run(cfg), tmp_path / "a")
    first = fit(new_run(cfg), tmp_path / "b", max_steps=60)
    assert first.step == 60 and read_checkpoint(tmp_path / "b")["step"] == 60
    resumed = fit(resume_run(tmp_path / "b"), tmp_path / "b")
    assert resumed.step == 120
    assert np.array_equal(np.asarray(resumed.losses), np.asarray(straight.losses))  # bit for bit
    for k, v in _weights(straight).items():
        assert np.array_equal(v, _weights(resumed)[k]), k
    assert resumed.dev_history == straight.dev_history
    assert np.array_equal(np.load(tmp_path / "b" / LOSSES_NAME), np.asarray(straight.losses))


def test_keyboard_interrupt_saves_checkpoint_and_resumes_exactly(names_file, tmp_path):
    cfg = tiny(names_file, ckpt_every=0)  # no periodic checkpoint: the interrupt must write it

    def hook(run, loss):
        if run.step == 37:
            raise KeyboardInterrupt

    run = fit(new_run(cfg), tmp_path, callback=hook)
    assert run.interrupted and run.step == 37
    ck = read_checkpoint(tmp_path / CKPT_NAME)
    assert ck["step"] == 37 and len(ck["losses"]) == 37
    resumed = fit(resume_run(tmp_path), tmp_path)
    assert not resumed.interrupted
    assert np.array_equal(np.asarray(resumed.losses), np.asarray(fit(new_run(cfg)).losses))


def test_resume_refuses_changed_options_and_data(names_file, tmp_path):
    fit(new_run(tiny(names_file, steps=10)), tmp_path)
    with pytest.raises(RunError, match="n-hidden"):
        resume_run(tmp_path, n_hidden=64)
    run = resume_run(tmp_path, steps=20)  # extending a run is allowed
    assert run.step == 10 and run.config.steps == 20
    with open(names_file, encoding="utf-8") as f:
        original = f.read()
    try:
        with open(names_file, "a", encoding="utf-8") as f:
            f.write("zzzzq\n")
        with pytest.raises(RunError, match="changed"):
            resume_run(tmp_path)
    finally:
        with open(names_file, "w", encoding="utf-8") as f:
            f.write(original)


def test_sampling_is_reproducible_and_marks_train_names(names_file, tmp_path):
    fit(new_run(tiny(names_file, steps=200)), tmp_path)
    _, model, data, _ = load_model(tmp_path)
    a = sample_names(model, data.vocab, 30, seed=7)
    assert a == sample_names(model, data.vocab, 30, seed=7)
    assert a != sample_names(model, data.vocab, 30, seed=8)
    assert all(set(name) <= set(data.vocab.itos[1:]) for name in a)
    cold = sample_names(model, data.vocab, 30, temperature=0.05, seed=7)
    assert len(set(cold)) < len(set(a))  # low temperature: nearly greedy, few distinct names
    marked = mark_names(["emma", "zalyn", ""], ["emma", "olivia"])
    assert marked == ["emma (in train)", "zalyn (new)", "(empty) (new)"]
    with pytest.raises(ValueError, match="temperature"):
        sample_names(model, data.vocab, 1, temperature=0)


def test_sampling_stops_at_max_len():
    vocab = Vocab("ab")
    model = MLPLanguageModel(MLPConfig(vocab.size, 2, 3, 4), generator=creation.Generator(0))
    model.output.bias.data[:] = np.array([-50, 10, -50], np.float32)  # always 'a', never '.'
    assert sample_names(model, vocab, 2, seed=0, max_len=5) == ["aaaaa", "aaaaa"]


def test_lr_find_and_suggestion(names_file):
    res = lr_find(tiny(names_file), num=60)
    assert len(res["lrs"]) == len(res["losses"]) == 60
    assert res["lrs"][0] == pytest.approx(1e-3) and res["lrs"][-1] == pytest.approx(1.0)
    # the rule on a synthetic curve: flat, dips to its minimum at lr 0.5, then blows up
    lrs = 10 ** np.linspace(-3, 0, 1000)
    curve = 3 - np.exp(-((np.log10(lrs) - np.log10(0.5)) ** 2) / 0.1)
    lr, s = suggest_lr(lrs, curve)
    assert lr == pytest.approx(0.5 / 3, rel=0.05) and len(s) == 1000
    assert np.allclose(smooth(np.ones(10), 3), 1.0)


def test_neural_bigram_learns():
    words = load_words()[:2000]
    vocab = Vocab.from_words(words)
    _, first, _ = train_neural_bigram(words, vocab, steps=1)
    _, total, nll = train_neural_bigram(words, vocab, steps=30)
    assert total < first - 0.5 and nll < total  # regularization adds to the NLL


def test_files_written(names_file, tmp_path):
    fit(new_run(tiny(names_file, steps=5)), tmp_path)
    assert os.path.exists(tmp_path / CKPT_NAME) and len(np.load(tmp_path / LOSSES_NAME)) == 5


def test_resume_is_exact_with_the_generator_state_as_an_array(names_file, tmp_path):
    # the Mersenne Twister Generator returns its state as torch's 5056-byte uint8 array
    cfg = tiny(names_file, steps=60)
    straight = fit(new_run(cfg))
    fit(new_run(cfg), tmp_path, max_steps=25)
    ck = read_checkpoint(tmp_path)
    assert isinstance(ck["rng"], np.ndarray) and ck["rng"].dtype == np.uint8
    assert np.array_equal(fit(resume_run(tmp_path), tmp_path).losses, straight.losses)


def test_train_step_is_the_lecture_step(names_file):
    """train_step = forward, zero_grad, backward, update; its loss is the forward's."""
    from models.train import train_step
    run = new_run(tiny(names_file))
    X, Y = run.data.Xtr[:32], run.data.Ytr[:32]
    before = {k: v.copy() for k, v in run.model.state_dict().items()}
    with tg_no_grad():
        _, expected = run.model(X, Y)
    assert train_step(run.model, run.optimizer, X, Y).item() == expected.item()
    grad = run.model.hidden.weight.grad.numpy()
    assert np.abs(grad).max() > 0
    np.testing.assert_array_equal(run.model.state_dict()["hidden.weight"], before["hidden.weight"] - 0.1 * grad)

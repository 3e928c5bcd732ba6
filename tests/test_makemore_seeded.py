"""examples/makemore_part2_seeded.py: the lecture's seeded draws are torch's, number for number."""
import numpy as np
import pytest

from examples import makemore_part2_seeded as mm

torch = pytest.importorskip("torch")


def test_the_first_forward_pass_prints_the_lectures_loss():
    words, stoi, _ = mm.load_words()
    ours = mm.first_five_words_loss(words, stoi)
    assert f"{ours:.4f}" == "17.7697"
    theirs = mm.first_five_words_loss_torch(words, stoi)
    assert ours == pytest.approx(theirs, rel=2e-7)      # float32 rounding of the last ops only


def test_parameters_minibatches_and_initial_loss_are_torchs():
    ours, theirs = mm.run(5, evaluate=False), mm.run_torch(5, evaluate=False)
    assert ours["parameters"] == theirs["parameters"] == mm.LECTURE["parameters"]
    for a, b in zip(ours["params"], theirs["params"]):
        assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)      # every bit
    np.testing.assert_array_equal(ours["first_ix"], theirs["first_ix"])
    assert ours["initial_train_loss"] == pytest.approx(theirs["initial_train_loss"], rel=1e-5)
    assert ours["losses"][0] == pytest.approx(theirs["losses"][0], rel=1e-6)


def test_the_minibatch_stream_is_torchs_for_many_steps():
    g, t = mm.tg.Generator().manual_seed(mm.SEED), torch.Generator().manual_seed(mm.SEED)
    mm.init_params(g), [torch.randn(s, generator=t) for s in [(27, 10), (30, 200), 200, (200, 27), 27]]
    ours = np.stack([mm.tg.randint(0, 182625, (32,), generator=g).numpy() for _ in range(500)])
    theirs = torch.stack([torch.randint(0, 182625, (32,), generator=t) for _ in range(500)])
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_sampling_torchs_trained_model_gives_torchs_names():
    """Same parameters, same names: the sampler's multinomial draws are torch's. (Training in
    numpy and in torch rounds differently, and the difference grows step by step, so the two
    trainings end with different parameters; see the example's docstring.)"""
    theirs = mm.run_torch(300, evaluate=False)
    assert mm.sample(theirs["trained"], mm.load_words()[2]) == theirs["names"]


def test_the_example_prints_lecture_and_ours(capsys):
    res = mm.main(["--steps", "20"])
    out = capsys.readouterr().out
    assert out.count("first forward pass (5 words): loss 17.7697") == 2
    assert "carmahela." in out and len(res["names"]) == 20 and len(res["losses"]) == 20

import numpy as np
import pytest

from trainer.data.errors import DataError
from trainer.data.sampling import segment_indices


@pytest.mark.parametrize("n", [16, 17, 20, 31, 48, 100, 377])
def test_test_indices_are_segment_middles(n):
    got = segment_indices(n, 16, train=False)
    tick = n / 16
    expected = [int(tick / 2 + tick * k) for k in range(16)]  # the authors' rule
    assert got.tolist() == expected


@pytest.mark.parametrize("n", [16, 19, 50, 240])
def test_train_indices_one_per_segment(n):
    rng = np.random.default_rng(0)
    edges = [(k * n) // 16 for k in range(17)]
    for _ in range(50):
        got = segment_indices(n, 16, train=True, rng=rng)
        assert got.shape == (16,)
        for k, i in enumerate(got):
            assert edges[k] <= i < edges[k + 1]


def test_train_indices_cover_each_segment_and_vary():
    rng = np.random.default_rng(1)
    draws = np.stack([segment_indices(64, 16, True, rng) for _ in range(200)])
    assert all(len(set(draws[:, k])) == 4 for k in range(16))  # every frame of a segment is drawn


def test_train_indices_deterministic_given_seed():
    a = segment_indices(90, 16, True, np.random.default_rng([3, 1, 7]))
    b = segment_indices(90, 16, True, np.random.default_rng([3, 1, 7]))
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("train", [False, True])
def test_short_clips_repeat_last_frame(train):
    got = segment_indices(5, 16, train=train, rng=np.random.default_rng(0))
    assert got.tolist() == [0, 1, 2, 3, 4] + [4] * 11


def test_single_frame_and_bad_counts():
    assert segment_indices(1, 4).tolist() == [0, 0, 0, 0]
    with pytest.raises(DataError):
        segment_indices(0, 16)

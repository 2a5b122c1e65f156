"""Fixtures shared by the trainer tests."""

import pytest

from trainer.data.synthetic import generate


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """(train list, test list) of a tiny synthetic set: 2 + 1 clips per class, 32 px, 6-12 frames."""
    made = generate(tmp_path_factory.mktemp("synth"), train_per_class=2, test_per_class=1, size=32, seed=0,
                    min_frames=6, max_frames=12)
    return made.train_list, made.test_list

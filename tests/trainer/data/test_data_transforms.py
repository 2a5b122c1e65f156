import numpy as np
import pytest
import torch

from trainer.data.errors import DataError
from trainer.data.transforms import (AugmentPreset, augment_preset, crop_params, resize_clip,
                                     train_transform)


def _clip(t=4, h=40, w=50):
    base = torch.arange(3 * h * w, dtype=torch.int64).reshape(3, h, w) % 251
    return base.to(torch.uint8).expand(t, 3, h, w).clone()  # every frame identical


@pytest.mark.parametrize("name", ["dfew", "ferv39k", "mafw", "light", "none"])
def test_train_transform_same_for_every_frame(name):
    clip = _clip()
    for seed in range(5):
        out = train_transform(clip, 24, augment_preset(name), np.random.default_rng(seed))
        assert out.shape == (4, 3, 24, 24) and out.dtype == torch.uint8
        assert all(torch.equal(out[0], out[i]) for i in range(1, 4))


def test_train_transform_deterministic_and_random():
    clip, preset = _clip(), augment_preset("dfew")
    a = train_transform(clip, 24, preset, np.random.default_rng(5))
    b = train_transform(clip, 24, preset, np.random.default_rng(5))
    c = train_transform(clip, 24, preset, np.random.default_rng(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_crop_params_inside_image():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = crop_params(30, 70, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and top + h <= 30 and 0 <= left and left + w <= 70 and h > 0 and w > 0


def test_crop_params_fallback_is_centred():
    top, left, h, w = crop_params(10, 100, (0.99, 1.0), (1.0, 1.0), np.random.default_rng(0))
    assert (h, w) == (10, 10) and left == 45


def test_resize_clip_plain():
    out = resize_clip(_clip(2, 40, 50), 16)
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.uint8
    same = _clip(2, 16, 16)
    assert resize_clip(same, 16) is same


def test_bad_presets():
    with pytest.raises(DataError, match="unknown augmentation preset"):
        augment_preset("imagenet")
    with pytest.raises(DataError, match="scale"):
        AugmentPreset(scale=(0.5, 1.5))
    with pytest.raises(DataError, match="brightness"):
        AugmentPreset(brightness=1.5)

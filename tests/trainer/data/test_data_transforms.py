import numpy as np
import pytest
import torch

from trainer.data.errors import DataError
from trainer.data.registry import AugmentPreset, augment_preset
from trainer.data.transforms import crop_params, resize_clip, to_tensor, train_transform


def _clip(t=4, h=40, w=50):
    base = (np.arange(h * w * 3).reshape(h, w, 3) % 251).astype(np.uint8)
    return np.repeat(base[None], t, axis=0)  # (T, H, W, 3), every frame identical


@pytest.mark.parametrize("name", ["dfew", "ferv39k", "mafw", "light", "none"])
def test_train_transform_same_for_every_frame(name):
    clip = _clip()
    for seed in range(5):
        out = train_transform(clip, 24, augment_preset(name), np.random.default_rng(seed))
        assert out.shape == (4, 3, 24, 24) and out.dtype == np.uint8 and out.flags.c_contiguous
        assert all(np.array_equal(out[0], out[i]) for i in range(1, 4))


def test_train_transform_deterministic_and_random():
    clip, preset = _clip(), augment_preset("dfew")
    a = train_transform(clip, 24, preset, np.random.default_rng(5))
    b = train_transform(clip, 24, preset, np.random.default_rng(5))
    c = train_transform(clip, 24, preset, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_flip_and_brightness_do_what_they_say():
    clip = _clip(2, 24, 24)
    chw = clip.transpose(0, 3, 1, 2)  # (T, 3, H, W)
    flips = AugmentPreset(crop=False, hflip=True)
    outs = [train_transform(clip, 24, flips, np.random.default_rng(s)) for s in range(20)]
    assert any(np.array_equal(o, chw) for o in outs)
    assert any(np.array_equal(o, chw[..., ::-1]) for o in outs)
    assert all(np.array_equal(o, chw) or np.array_equal(o, chw[..., ::-1]) for o in outs)
    bright = AugmentPreset(crop=False, hflip=False, brightness=0.5)
    out = train_transform(clip, 24, bright, np.random.default_rng(0))
    ratio = out.astype(float).sum() / clip.astype(float).sum()
    assert 0.5 <= ratio <= 1.5 and ratio != 1.0
    expected = np.clip(chw.astype(float) * ratio, 0, 255)
    assert np.abs(out.astype(float) - expected).mean() < 3


def test_crop_takes_the_same_box_from_every_frame():
    clip = np.stack([_clip(1, 40, 50)[0], 255 - _clip(1, 40, 50)[0]])  # two different frames
    out = train_transform(clip, 40, AugmentPreset(scale=(0.3, 0.3), ratio=(1.0, 1.0), hflip=False),
                          np.random.default_rng(3))
    assert np.abs(out[0].astype(int) + out[1].astype(int) - 255).max() <= 1


def test_crop_params_inside_image():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = crop_params(30, 70, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and top + h <= 30 and 0 <= left and left + w <= 70 and h > 0 and w > 0


def test_crop_params_fallback_is_centred():
    top, left, h, w = crop_params(10, 100, (0.99, 1.0), (1.0, 1.0), np.random.default_rng(0))
    assert (h, w) == (10, 10) and left == 45


def test_resize_clip_plain():
    clip = _clip(2, 40, 50)
    out = resize_clip(clip, 16)
    assert out.shape == (2, 3, 16, 16) and out.dtype == np.uint8
    same = resize_clip(list(_clip(2, 16, 16)), 16)
    assert np.array_equal(same, _clip(2, 16, 16).transpose(0, 3, 1, 2))
    tensor = to_tensor(out)
    assert tensor.shape == (2, 3, 16, 16) and tensor.dtype == torch.uint8 and tensor.is_contiguous()


def test_bad_presets():
    with pytest.raises(DataError, match="unknown augmentation preset"):
        augment_preset("imagenet")
    with pytest.raises(DataError, match="scale"):
        AugmentPreset(scale=(0.5, 1.5))
    with pytest.raises(DataError, match="brightness"):
        AugmentPreset(brightness=1.5)

"""The face world: AU table, renderer, captions, and that no class shortcut exists."""

import re

import numpy as np
import pytest
import torch

from promptkit.classes import BUILTIN_CLASS_SETS

from trainer.world.aus import AUS, CLASS_AUS, CLASSES, N_AUS, class_table_markdown, sample_apex
from trainer.world.captions import BLINK, FORBIDDEN, PHRASES, RESTING, caption
from trainer.world.clips import frame_aus, intensity, render_frame, sample_clip
from trainer.world.pairs import render_pairs


def test_classes_follow_dfew_order_and_every_class_has_a_distinct_mixture():
    assert CLASSES == tuple(BUILTIN_CLASS_SETS["dfew"])
    keys = {a.key for a in AUS}
    assert all(set(table) <= keys for table in CLASS_AUS.values())
    signatures = {frozenset(k for k, (p, _, _) in t.items() if p >= 0.5) for t in CLASS_AUS.values()}
    assert len(signatures) == len(CLASSES)
    table = class_table_markdown()
    assert all(f" {c} |" in table.splitlines()[0] for c in CLASSES) and len(table.splitlines()) == 2 + len(AUS)


def test_overlapping_classes_share_action_units():
    shared = set(CLASS_AUS["fear"]) & set(CLASS_AUS["surprise"])
    assert {"inner_brow_raise", "upper_lid_raise"} <= shared
    assert "brow_lower" in set(CLASS_AUS["anger"]) & set(CLASS_AUS["disgust"])


def test_clip_starts_neutral_and_reaches_its_apex():
    rng = np.random.default_rng(3)
    spec = sample_clip(rng, sample_apex(rng, "surprise"), 20, 30)
    assert intensity(spec, 0) == 0.0
    assert max(intensity(spec, t) for t in range(spec.n)) > 0.99
    peak = max(range(spec.n), key=lambda t: intensity(spec, t))
    assert frame_aus(spec, peak).shape == (N_AUS,)
    frame = render_frame(spec, peak, 64, rng)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8


def test_rendering_is_a_pure_function_of_the_seed():
    a = render_pairs(300, 48, seed=5)
    b = render_pairs(300, 48, seed=5, workers=2)  # two chunks of pairs, rendered in two processes
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])
    assert not np.array_equal(a[0], render_pairs(6, 48, seed=6)[0])


def test_captions_describe_actions_and_never_name_a_class():
    _, texts, _ = render_pairs(400, 32, seed=1)
    words = re.compile(r"\b(" + "|".join(FORBIDDEN) + r")\b")
    assert not [t for t in texts if words.search(t.lower())]
    phrases = [p for group in PHRASES.values() for p in group]
    active = [any(p in t for p in phrases) for t in texts]
    assert sum(active) > 200  # the rest are onsets, blinks and resting faces
    assert all(any(r in t for r in RESTING + BLINK) for t, a in zip(texts, active) if not a)
    assert len(set(texts)) > 300  # varied templates and synonyms


def test_caption_names_what_moves():
    rng = np.random.default_rng(0)
    au = np.zeros(N_AUS)
    au[[a.key for a in AUS].index("nose_wrinkle")] = 0.9
    from trainer.world.face import sample_identity

    text = caption(au, sample_identity(rng), rng)
    assert any(p in text for p in PHRASES["nose_wrinkle"])


def _clip_features(per_class, seed):
    """Per clip: mean colour (first, middle, last frame) and length; labels."""
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            rng = np.random.default_rng([seed, label, i])
            spec = sample_clip(rng, sample_apex(rng, name), 16, 40)
            frames = [render_frame(spec, t, 40, rng).astype(float) for t in (0, spec.n // 2, spec.n - 1)]
            means = np.concatenate([f.reshape(-1, 3).mean(0) for f in frames])
            xs.append(np.concatenate([means / 255.0, [spec.n / 40.0]]))
            ys.append(label)
    return torch.tensor(np.array(xs), dtype=torch.float32), torch.tensor(ys)


def test_no_colour_or_length_shortcut_a_linear_classifier_stays_near_chance():
    x, y = _clip_features(40, seed=11)
    xt, yt = _clip_features(25, seed=12)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, xt = (x - mu) / sd, (xt - mu) / sd
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], len(CLASSES))
    opt = torch.optim.Adam(lin.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(x), y).backward()
        opt.step()
    acc = (lin(xt).argmax(1) == yt).float().mean().item()
    assert acc < 0.28, f"a linear classifier on colour and length reaches {acc:.2f} (chance 0.14)"


@pytest.mark.parametrize("name", CLASSES)
def test_apex_sampling_shows_the_class_core(name):
    rng = np.random.default_rng(1)
    apex = np.stack([sample_apex(rng, name) for _ in range(50)])
    if name == "neutral":
        assert apex.max() < 0.1
    else:
        assert (apex.max(axis=1) >= 0.3).all()

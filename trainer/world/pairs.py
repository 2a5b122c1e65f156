"""Image-caption pairs of the face world, for contrastive pretraining.

Pair i is a pure function of (seed, i): a random identity and clip, one of its frames (so onsets,
apexes, releases and blinks all appear), and in `RANDOM_SHARE` of the pairs an AU combination drawn
without regard to any class, so that the text side learns each action on its own. Half the pairs
are the `cartoon` style, half the same faces in a random look (`face.vary_look`: any ink, paper and
fill colours, either polarity, any line width), so that the image side reads shapes, not colours.
The held-out styles (`chalk`, `sketch`) are never drawn: they check that zero-shot transfers.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import replace

import numpy as np

from trainer.world.aus import CLASSES, N_AUS, sample_apex, sample_random
from trainer.world.captions import action_vector, caption
from trainer.world.clips import frame_aus, render_frame, sample_clip
from trainer.world.face import vary_look

RANDOM_SHARE = 0.3
VARIED_SHARE = 0.5  # pairs drawn in a random look (face.vary_look) instead of the cartoon's
_CHUNK = 256


def pair(seed: int, index: int, size: int) -> tuple[np.ndarray, str, np.ndarray]:
    """Pair `index`: a frame uint8 `(size, size, 3)`, its caption, and what the caption says
    (`captions.action_vector`)."""
    rng = np.random.default_rng([seed, 0x5EED, index])
    label = int(rng.integers(len(CLASSES)))
    spec = sample_clip(rng, sample_apex(rng, CLASSES[label]), 16, 40)
    if rng.random() < VARIED_SHARE:
        spec = replace(spec, identity=vary_look(spec.identity, rng))
    t = int(rng.integers(spec.n))
    au = sample_random(rng) if rng.random() < RANDOM_SHARE else frame_aus(spec, t)
    image = render_frame(spec, t, size, rng, au=au)
    blink = t in spec.blinks
    return image, caption(au, spec.identity, rng, blink=blink), action_vector(au, blink)


def _chunk(args: tuple[int, int, int, int]) -> tuple[np.ndarray, list[str], np.ndarray]:
    seed, start, stop, size = args
    images = np.empty((stop - start, size, size, 3), dtype=np.uint8)  # (n, S, S, 3)
    actions = np.empty((stop - start, N_AUS + 2), dtype=np.float32)  # (n, A)
    texts = []
    for j, i in enumerate(range(start, stop)):
        images[j], text, actions[j] = pair(seed, i, size)
        texts.append(text)
    return images, texts, actions


def render_pairs(count: int, size: int, seed: int, *, start: int = 0,
                 workers: int = 1) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Pairs start .. start+count-1: images uint8 `(count, size, size, 3)`, captions, and what each
    caption says `(count, N_AUS + 2)`.

    The result does not depend on `workers` (each pair is seeded by its index)."""
    jobs = [(seed, s, min(s + _CHUNK, start + count), size) for s in range(start, start + count, _CHUNK)]
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_chunk, jobs)
    else:
        parts = [_chunk(job) for job in jobs]
    images = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, size, size, 3), np.uint8)
    actions = np.concatenate([p[2] for p in parts]) if parts else np.empty((0, N_AUS + 2), np.float32)
    return images, [t for p in parts for t in p[1]], actions

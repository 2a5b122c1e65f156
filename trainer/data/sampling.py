"""Which frames of a clip to read: one per segment (TSN-style), as in DFER-CLIP.

The clip is cut into `num_segments` equal segments. Training takes one random frame inside each
segment; testing takes the middle frame of each. Multi-view testing (`--test-views NxM`) takes N
temporal clips: clip j of N takes the frame at (j + 0.5) / N of each segment (N = 1: the middle). A clip with fewer frames than segments uses all of
its frames and repeats the last one. (The authors' code leaves the tail frames that do not fill a
whole segment out of the random draw; here the segments cover the whole clip. The test frames are exactly the authors'.)
"""

from __future__ import annotations

import numpy as np

from trainer.errors import DataError


def segment_indices(num_frames: int, num_segments: int = 16, train: bool = False,
                    rng: np.random.Generator | None = None, view: int = 0, views: int = 1) -> np.ndarray:
    """Frame indices `(num_segments,)` int64, non-decreasing, all in `0..num_frames-1`; a test
    `view` of `views` offsets the frame inside each segment (see the module docstring)."""
    if not 0 <= view < views:
        raise DataError(f"view must be in 0..{views - 1}, got {view}")
    if num_frames < 1:
        raise DataError(f"num_frames must be >= 1, got {num_frames}")
    if num_segments < 1:
        raise DataError(f"num_segments must be >= 1, got {num_segments}")
    if num_frames < num_segments:
        idx = np.arange(num_segments, dtype=np.int64)
        return np.minimum(idx, num_frames - 1)  # repeat the last frame
    edges = (np.arange(num_segments + 1, dtype=np.int64) * num_frames) // num_segments  # (S+1,)
    starts, lengths = edges[:-1], edges[1:] - edges[:-1]  # every length >= 1
    if train:
        if rng is None:
            rng = np.random.default_rng()
        offsets = (rng.random(num_segments) * lengths).astype(np.int64)  # uniform in [0, length)
        return starts + np.minimum(offsets, lengths - 1)
    # segment k at (view + 0.5) / views of its length in continuous time: floor((k + (2v+1) / 2V) * n / S);
    # one view is the middle, floor((k + 0.5) * n / S), the authors' test rule
    k = np.arange(num_segments, dtype=np.int64)
    return ((2 * views * k + 2 * view + 1) * num_frames) // (2 * views * num_segments)

"""The device side of `--decode gpu`: a batch of JPEG bytes -> augmented uint8 clips on the device.

`BatchDecoder(dataset, size, device)(batch)` turns the loader's `EncodedClips` into
`(B, T, 3, S, S)` uint8 on `device`, the same tensor the CPU path's loader yields:
- all JPEG frames of the batch are decoded in one `torchvision.io.decode_jpeg` call (nvJPEG on
  CUDA; libjpeg-turbo on the CPU, where the tests run it); a frame the decoder rejects is read with
  the CPU path's reader and, failing that, replaced by the nearest readable frame of its clip
  (counted in the dataset's `LoadStats`, as on the CPU path);
- each clip then gets the augmentation its worker drew (`trainer.data.transforms.draw_augment`):
  rotation, crop, resize, flip, brightness, applied as tensor operations that follow OpenCV's
  arithmetic: the crop is a slice, the resize two small matmuls with OpenCV's interpolation weights
  (area averaging when the crop shrinks, its bilinear rule when it grows), each uint8 rounding
  where OpenCV rounds (the rotation on its 1/32-pixel grid). The pixels match the CPU path's within
  rounding (+-1, +-2 where a brightness factor scales that); the random parameters are the same.
Matmuls run in fp32 with TF32 off, so CUDA and CPU agree.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from trainer.data.decode import LoadStats, _read_nearest, list_frames
from trainer.data.encoded import JPEG, EncodedClips
from trainer.errors import DataError

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- OpenCV's resize weights
def axis_weights(src: int, dst: int, mode: str, device: torch.device) -> torch.Tensor:
    """`(dst, src)` float32 weights of one axis of OpenCV's resize from `src` to `dst` pixels.

    `mode`: "area" (INTER_AREA when both axes shrink: each output averages the input span it
    covers), "area_linear" (INTER_AREA's two-tap rule when an axis grows), "linear" (INTER_LINEAR,
    half-pixel centres, edges clamped).
    """
    d = torch.arange(dst, dtype=torch.float64, device=device)  # (dst,)
    scale = src / dst
    if mode == "area":
        j = torch.arange(src, dtype=torch.float64, device=device)  # (src,)
        lo, hi = (d * scale)[:, None], ((d + 1) * scale)[:, None]  # (dst, 1)
        overlap = (torch.minimum(j[None] + 1, hi) - torch.maximum(j[None], lo)).clamp_min(0)  # (dst, src)
        return (overlap / torch.minimum(torch.full_like(lo, scale), src - lo)).float()
    if mode == "linear":
        pos = (d + 0.5) * scale - 0.5
        s = torch.floor(pos)
        frac = pos - s
    elif mode == "area_linear":
        s = torch.floor(d * scale)
        frac = (d + 1) - (s + 1) / scale
        frac = torch.where(frac <= 0, torch.zeros_like(frac), frac - torch.floor(frac))
    else:
        raise DataError(f"resize mode must be area, area_linear or linear, got {mode!r}")
    low, high = s < 0, s >= src - 1
    frac = torch.where(low | high, torch.zeros_like(frac), frac.float().double())  # OpenCV keeps it as float
    s = torch.where(low, torch.zeros_like(s), torch.where(high, torch.full_like(s, src - 1), s)).long()
    weights = torch.zeros(dst, src, dtype=torch.float64, device=device)
    rows = torch.arange(dst, device=device)
    weights.index_put_((rows, s), 1 - frac, accumulate=True)
    weights.index_put_((rows, (s + 1).clamp_max(src - 1)), frac, accumulate=True)
    return weights.float()


def resize_modes(h: int, w: int, size_h: int, size_w: int) -> tuple[str, str]:
    """OpenCV's choice in `trainer.data.transforms._put`: INTER_AREA when the area shrinks (true
    averaging only if both axes shrink), else INTER_LINEAR."""
    if h * w < size_h * size_w:
        return "linear", "linear"
    if h >= size_h and w >= size_w:
        return "area", "area"
    return "area_linear", "area_linear"


@contextlib.contextmanager
def _exact_fp32():
    """fp32 matmuls without TF32 (whose 10-bit mantissa would move pixels by more than rounding)."""
    matmul = torch.backends.cuda.matmul
    previous = matmul.allow_tf32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matmul.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matmul.allow_tf32 = previous


def resize(frames: torch.Tensor, size_h: int, size_w: int, modes: tuple[str, str] | None = None) -> torch.Tensor:
    """`(N, 3, h, w)` float pixel values -> `(N, 3, size_h, size_w)` float, rounded to integers
    as OpenCV rounds uint8 output; unchanged when already that size."""
    h, w = frames.shape[-2:]
    if (h, w) == (size_h, size_w):
        return frames
    mode_y, mode_x = modes or resize_modes(h, w, size_h, size_w)
    wy = axis_weights(h, size_h, mode_y, frames.device)  # (size_h, h)
    wx = axis_weights(w, size_w, mode_x, frames.device)  # (size_w, w)
    with _exact_fp32():
        out = wy @ frames @ wx.t()  # (N, 3, size_h, size_w)
    return torch.floor(out + 0.5).clamp_(0, 255)


def rotate(frames: torch.Tensor, angle: float) -> torch.Tensor:
    """`(N, 3, H, W)` float -> rotated by `angle` degrees about the centre, bilinear, zeros outside,
    rounded (OpenCV's warpAffine with getRotationMatrix2D((w/2 - 0.5, h/2 - 0.5), angle, 1))."""
    n, _, h, w = frames.shape
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    cx, cy = w / 2 - 0.5, h / 2 - 0.5
    m = np.array([[cos, sin, (1 - cos) * cx - sin * cy], [-sin, cos, sin * cx + (1 - cos) * cy]])  # forward (2, 3)
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]  # inverted as OpenCV does, in double
    a00, a01, a10, a11 = m[1, 1] / det, -m[0, 1] / det, -m[1, 0] / det, m[0, 0] / det
    a02, a12 = -a00 * m[0, 2] - a01 * m[1, 2], -a10 * m[0, 2] - a11 * m[1, 2]
    ys = torch.arange(h, device=frames.device, dtype=torch.float64)[:, None]  # (H, 1)
    xs = torch.arange(w, device=frames.device, dtype=torch.float64)[None, :]  # (1, W)
    # OpenCV's fixed point: row and column terms rounded to 1/1024 pixel, then cut to its 1/32 grid
    sx = torch.floor((torch.round((a01 * ys + a02) * 1024) + 16 + torch.round(a00 * xs * 1024)) / 32) / 32  # (H, W)
    sy = torch.floor((torch.round((a11 * ys + a12) * 1024) + 16 + torch.round(a10 * xs * 1024)) / 32) / 32  # (H, W)
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1).float()  # (H, W, 2)
    out = F.grid_sample(frames, grid.expand(n, h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.floor(out + 0.5).clamp_(0, 255)  # (N, 3, H, W)


def augment_clip(frames: torch.Tensor, size: int, params: list[float]) -> torch.Tensor:
    """One clip `(T, 3, H, W)` uint8 on the device + its drawn params (`EncodedClips.params` row)
    -> `(T, 3, size, size)` uint8: the CPU path's train transform (or plain resize)."""
    _, _, angle, has_box, top, left, box_h, box_w, flip, factor = params
    x = frames.float()  # (T, 3, H, W)
    if angle:
        x = rotate(x, angle)
    if has_box > 0:
        top, left, box_h, box_w = int(top), int(left), int(box_h), int(box_w)
        x = x[:, :, top:top + box_h, left:left + box_w]  # (T, 3, h, w)
    x = resize(x, size, size)  # (T, 3, S, S), integer values
    if flip > 0:
        x = x.flip(-1)
    if factor != 1.0:  # OpenCV's convertScaleAbs: |x * alpha| in fp32, rounded half to even, saturated
        x = (x * factor).abs_().round_().clamp_(0, 255)  # the scalar enters fp32 math as fp32
    return x.to(torch.uint8)


# ---------------------------------------------------------------------- decoding
def _decode_jpegs(buffers: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """JPEG byte tensors -> `(3, H, W)` uint8 on `device`; None for a frame the decoder rejects."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not buffers:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 flags its image codecs as deprecated
        try:
            return list(decode_jpeg(buffers, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:  # one bad frame fails the batched call: decode them one by one
            out: list[torch.Tensor | None] = []
            for data in buffers:
                try:
                    out.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    out.append(None)
            return out


class BatchDecoder:
    """`EncodedClips` -> `(B, T, 3, size, size)` uint8 on `device` (see the module docstring)."""

    def __init__(self, dataset, size: int, device: torch.device) -> None:
        self.dataset, self.size, self.device = dataset, size, torch.device(device)
        stats = getattr(dataset, "stats", None)
        self.stats = stats if stats is not None else LoadStats()

    def frames(self, batch: EncodedClips) -> list[torch.Tensor]:
        """Every frame of the batch as `(3, H, W)` uint8 on the device, clip-major."""
        meta = batch.meta.tolist()  # (B*T, 5): offset, length, kind, height, width
        jpeg = [i for i, m in enumerate(meta) if m[2] == JPEG]
        decoded = _decode_jpegs([batch.data[meta[i][0]:meta[i][0] + meta[i][1]] for i in jpeg], self.device)
        out: list[torch.Tensor | None] = [None] * len(meta)
        for i, image in zip(jpeg, decoded):
            out[i] = image if image is not None else self._fallback(batch, i)
        for i, (offset, length, kind, h, w) in enumerate(meta):
            if kind != JPEG:  # raw (H, W, 3) pixels a worker decoded
                raw = batch.data[offset:offset + length].view(h, w, 3)
                out[i] = raw.to(self.device, non_blocking=True).permute(2, 0, 1)  # (3, H, W)
        return out

    def _fallback(self, batch: EncodedClips, i: int) -> torch.Tensor:
        """Frame `i` the JPEG decoder rejected: the CPU path's reader, then its nearest-frame rule."""
        t = batch.frames
        clip, pick = int(batch.clips[i // t]), int(batch.picks[i // t, i % t])
        rec = self.dataset.records[clip]
        frames = list_frames(rec.path, self.dataset.frame_order)
        if not 0 <= pick < len(frames):
            raise DataError(f"clip folder {rec.path} changed while training; frame {pick} is gone")
        image = _read_nearest(frames, pick, {}, self.stats, None)  # (H, W, 3) uint8, counted if replaced
        return torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)  # (3, H, W)

    def __call__(self, batch: EncodedClips) -> torch.Tensor:
        frames = self.frames(batch)
        t = batch.frames
        params = batch.params.tolist()  # (B, PARAMS)
        out = torch.empty((len(params), t, 3, self.size, self.size), dtype=torch.uint8, device=self.device)
        for b, row in enumerate(params):
            ref_h, ref_w = int(row[0]), int(row[1])
            clip = [f if tuple(f.shape[1:]) == (ref_h, ref_w) else self._to_size(f, ref_h, ref_w)
                    for f in frames[b * t:(b + 1) * t]]
            out[b] = augment_clip(torch.stack(clip), self.size, row)  # (T, 3, S, S)
        return out  # (B, T, 3, S, S)

    @staticmethod
    def _to_size(frame: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """A frame of another size than its clip's first: INTER_AREA to that size, as the CPU path."""
        modes = ("area", "area") if frame.shape[1] >= h and frame.shape[2] >= w else ("area_linear", "area_linear")
        return resize(frame[None].float(), h, w, modes)[0].to(torch.uint8)

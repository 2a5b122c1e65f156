"""The clip dataset and its loader: 16 sampled frames per clip as uint8 `(T, 3, H, W)`, plus label.

Bad input, decided once here:
- At construction every clip is checked: a missing folder or video, or a folder without image
  files, raises DataError naming the first few such clips, their list lines and the total count.
  (Videos are only checked to exist here; a video that cannot be decoded fails when loaded, with a
  DataError naming the file.)
  When a list's frame count disagrees with the folder, the folder wins; the disagreements are kept
  in `dataset.mismatches` and summed up in one line by `dataset.mismatch_summary()`.
- While loading, an unreadable frame is replaced by the nearest readable frame of the same clip
  (a logged, counted warning); a clip with no readable frame raises DataError naming the clip.
- Labels out of range are rejected by `read_annotations` (file and line named).

Randomness (which frame in each segment, crop, flip, brightness, rotation) comes from a numpy
Generator seeded by (seed, epoch, index), never from global RNG state, so an epoch replays exactly
after a resume. Call `dataset.set_epoch(epoch)` before each epoch; the loader's sampler tags every
index with that epoch, which reaches persistent workers too.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from functools import partial
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainer.data.annotations import ClipRecord
from trainer.data.decode import FRAME_ORDERS, LoadStats, count_video_frames, first_readable, is_video, list_frames, load_frames, load_video
from trainer.data.encoded import EncodedView, collate_encoded
from trainer.data.faces import DEFAULT_MARGIN, HaarDetector, crop_faces
from trainer.data.mainguard import check_main_guard
from trainer.data.registry import AugmentPreset, augment_preset
from trainer.data.sampling import segment_indices
from trainer.data.transforms import crop_views, resize_clip, to_tensor, train_transform
from trainer.errors import DataError

log = logging.getLogger(__name__)
_SHOWN = 3  # how many bad clips an error message names


def _scan(records: Sequence[ClipRecord]) -> tuple[list[int], list[str], list[tuple]]:
    """Frame counts per record, problems (missing / empty) and (record, listed, found) mismatches."""
    counts, problems, mismatches = [], [], []
    for rec in records:
        found = 0
        if rec.path.is_dir():
            found = len(list_frames(rec.path))
            if found == 0:
                problems.append(f"{rec.path} ({rec.source}: no JPEG/PNG frames)")
        elif rec.path.is_file() and is_video(rec.path):
            found = rec.num_frames or 0  # videos are opened when loaded, not here
        elif rec.path.is_file():
            problems.append(f"{rec.path} ({rec.source}: not a frame folder nor a known video type)")
        else:
            problems.append(f"{rec.path} ({rec.source}: missing)")
        if found and rec.num_frames is not None and rec.num_frames != found and rec.path.is_dir():
            mismatches.append((rec, rec.num_frames, found))
        counts.append(found)
    return counts, problems, mismatches


class VideoClipDataset(Dataset):
    """Clips -> `(frames uint8 (T, 3, image_size, image_size), label)`.

    `augment` is a preset name (dfew | ferv39k | mafw | light | none), an AugmentPreset, or None
    (no augmentation); it is used only when `train` is True. `train` also picks random frames per
    segment instead of the middle ones.
    """

    def __init__(self, records: Sequence[ClipRecord], image_size: int, train: bool,
                 augment: str | AugmentPreset | None = None, num_segments: int = 16, *,
                 seed: int = 0, frame_order: str = "natural", face_crop: bool = False,
                 face_margin: float = DEFAULT_MARGIN, hint: str = "Check the list file and --data-root",
                 views: tuple[int, int] = (1, 1)) -> None:
        if not records:
            raise DataError("the clip list is empty")
        if not isinstance(image_size, int) or image_size < 8:
            raise DataError(f"image_size must be an integer >= 8, got {image_size!r}")
        if not isinstance(num_segments, int) or num_segments < 1:
            raise DataError(f"num_segments must be a positive integer, got {num_segments!r}")
        if frame_order not in FRAME_ORDERS:
            raise DataError(f"frame_order must be one of {FRAME_ORDERS}, got {frame_order!r}")
        if not 0 <= face_margin <= 2:
            raise DataError(f"face_margin must be in [0, 2], got {face_margin!r}")
        if train and tuple(views) != (1, 1):
            raise DataError(f"test views are for evaluation only; a train set takes views (1, 1), got {views!r}")
        self.records = list(records)
        self.image_size = image_size
        self.views = (int(views[0]), int(views[1]))  # (temporal clips, spatial crops) per test clip
        self.train = train
        self.preset = augment_preset(augment) if isinstance(augment, str) else augment
        self.num_segments = num_segments
        self.seed = int(seed)
        self.frame_order = frame_order
        self.face_margin = face_margin
        self.detector = HaarDetector() if face_crop else None
        self.face_found: dict[int, bool] = {}  # with face_crop: per clip index, whether a face was found (this process)
        self.epoch = 0
        self.start_index = 0
        self.stats = LoadStats()
        self.frame_counts, problems, self.mismatches = _scan(self.records)
        if problems:
            shown = "; ".join(problems[:_SHOWN])
            more = f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
            raise DataError(f"{len(problems)} of {len(self.records)} clips are unusable: {shown}{more}. {hint}")

    def __len__(self) -> int:
        return len(self.records)

    def check_readable(self, what: str = "clips") -> None:
        """Decode one frame of every clip (videos: open them) so that a clip with no readable frame
        fails now, naming it, rather than after an epoch of training."""
        problems = []
        for rec in self.records:
            if is_video(rec.path) and rec.path.is_file():
                try:
                    count_video_frames(rec.path)
                except DataError as exc:
                    problems.append(f"{rec.path} ({rec.source}: {exc})")
                continue
            error = first_readable(list_frames(rec.path, self.frame_order))
            if error is not None:
                problems.append(f"{rec.path} ({rec.source}: no readable frame)")
        if problems:
            shown = "; ".join(problems[:_SHOWN])
            more = f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
            raise DataError(f"{len(problems)} of {len(self.records)} {what} cannot be read: {shown}{more}. "
                            "Fix or remove them from the list")

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        """Select the epoch whose randomness to replay; skip the first `start_index` sampled items
        (a resume in mid-epoch: pass batches done x batch size)."""
        self.epoch = int(epoch)
        self.start_index = int(start_index)

    def mismatch_summary(self) -> str | None:
        """One line about list frame counts that disagree with their folders, or None."""
        if not self.mismatches:
            return None
        rec, listed, found = self.mismatches[0]
        return (f"{len(self.mismatches)} of {len(self.records)} clips have a frame count in the list "
                f"that differs from the folder (first: {rec.path} lists {listed}, has {found}); "
                "using the folders' counts")

    def rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The Generator for one clip in one epoch: a pure function of (seed, epoch, index)."""
        return np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, index])

    def load_clip(self, index: int, rng: np.random.Generator, view: int = 0):
        """Decode the sampled frames of clip `index` (temporal `view` of the test views) -> T frames
        `(H, W, 3)` uint8, source size."""
        rec = self.records[index]
        pick = partial(segment_indices, num_segments=self.num_segments, train=self.train, rng=rng,
                       view=view, views=self.views[0])
        if is_video(rec.path) and rec.path.is_file():
            clip = load_video(rec.path, pick, self.stats)
        else:
            frames = list_frames(rec.path, self.frame_order)
            if not frames:
                raise DataError(f"clip folder {rec.path} ({rec.source}) has no frames any more")
            # test frames are only resized, so big JPEGs may decode at a reduced scale
            draft = None if self.train or self.detector is not None else self.image_size
            clip = load_frames(frames, pick(len(frames)), self.stats, draft)
        if self.detector is not None:
            clip, found = crop_faces(clip, self.detector, self.face_margin)
            self.face_found[index] = found or self.face_found.get(index, False)  # any test view with a face
            if not found:
                self.stats.no_face += 1
                n = self.stats.no_face
                log.warning("no face found in %s; using the full frames (%d clip%s so far)",
                            rec.path, n, "" if n == 1 else "s")
        return clip

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        rng = self.rng(index, epoch)
        if self.views != (1, 1):  # multi-view test: (N*M, T, 3, S, S), clip-major
            clips, crops = self.views
            views = [v for j in range(clips) for v in crop_views(self.load_clip(index, rng, j), self.image_size, crops)]
            return torch.from_numpy(np.stack(views)), self.records[index].label
        clip = self.load_clip(index, rng)  # T x (H, W, 3) uint8
        if self.train and self.preset is not None:
            clip = train_transform(clip, self.image_size, self.preset, rng)
        else:
            clip = resize_clip(clip, self.image_size)
        return to_tensor(clip), self.records[index].label  # (T, 3, S, S) uint8, int


class SeededShuffle(Sampler[int]):
    """A permutation drawn from (seed, epoch): the same order again after a resume."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(self.size)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.size


class EpochTagged(Sampler[tuple[int, int]]):
    """Wraps a sampler: yields `(index, epoch)` with the dataset's epoch, skipping `start_index`."""

    def __init__(self, sampler: Sampler[int], dataset: VideoClipDataset) -> None:
        self.sampler, self.dataset = sampler, dataset

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.dataset.epoch, self.dataset.start_index
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        for n, index in enumerate(self.sampler):
            if n >= skip:
                yield int(index), epoch

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.dataset.start_index)


def _worker_init(seed: int, worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker; the workers are the parallelism
    torch.manual_seed(seed * 1000 + worker_id)  # only for stray torch randomness; items use rng()
    np.random.seed((seed * 1000 + worker_id) % 2**32)


def _worker_context():
    """Workers start from a clean fork server (preloaded with this module), not from a fork of the
    parent: a parent whose OpenCV or OpenMP thread pools are busy or half-torn-down (a second run in
    one process, the tests) would hand its children locked pool state, and they would hang."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def to_model_input(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The loader's uint8 (B, T, 3, H, W) frames -> float in [0, 1] on the device (the model's input)."""
    return frames.to(device, non_blocking=True).float().div_(255.0)  # (B, T, 3, H, W)


def build_loader(dataset: VideoClipDataset, batch_size: int, shuffle: bool, drop_last: bool,
                 workers: int, seed: int = 0, sampler: Sampler[int] | None = None,
                 encoded: bool = False) -> DataLoader:
    """A DataLoader over `dataset` yielding `(frames uint8 (B, T, 3, S, S), labels int64 (B,))`.

    Without `sampler`, `shuffle` gives a (seed, epoch) permutation; a given sampler (e.g.
    DistributedSampler) gets `set_epoch` called from `dataset.set_epoch`'s value at each epoch.
    With `encoded` the frames come as `trainer.data.encoded.EncodedClips` (JPEG bytes and the
    clips' augmentation draws) for `trainer.data.batched.BatchDecoder` to finish on the device.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size!r}")
    if workers < 0:
        raise DataError(f"workers must be >= 0, got {workers!r}")
    if workers > 0:
        check_main_guard()
    if sampler is None:
        sampler = SeededShuffle(len(dataset), seed) if shuffle else range(len(dataset))
    kwargs = {"collate_fn": collate_encoded} if encoded else {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=2,
                      worker_init_fn=partial(_worker_init, seed), multiprocessing_context=_worker_context())
    return DataLoader(EncodedView(dataset) if encoded else dataset, batch_size=batch_size,
                      sampler=EpochTagged(sampler, dataset),
                      drop_last=drop_last, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), **kwargs)

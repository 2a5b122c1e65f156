"""Video data for the trainer: list files, frame sampling, decoding, augmentation, loaders.

Public API (see docs/architecture.md): ClipRecord, read_annotations, standard_split,
VideoClipDataset, build_loader, DataError; `trainer.data.synthetic.generate` for the synthetic set.
"""

from trainer.data.annotations import ClipRecord, read_annotations, standard_split
from trainer.data.dataset import VideoClipDataset, build_loader
from trainer.errors import DataError

__all__ = ["ClipRecord", "DataError", "VideoClipDataset", "build_loader", "read_annotations",
           "standard_split"]

"""Video data for the trainer: list files, frame sampling, decoding, augmentation, loaders.

Public API (see docs/architecture.md): ClipRecord, read_annotations, standard_split,
VideoClipDataset, build_loader, DataError; `trainer.data.synthetic.generate` for the synthetic set;
the dataset and augmentation registries in `trainer.data.registry`. The names load on first use
(PEP 562), so the config can read the registries without importing torch.
"""

from __future__ import annotations

from trainer.lazy import lazy_names

_WHERE = {
    "ClipRecord": "trainer.data.annotations",
    "DataError": "trainer.errors",
    "VideoClipDataset": "trainer.data.dataset",
    "build_loader": "trainer.data.dataset",
    "read_annotations": "trainer.data.annotations",
    "standard_split": "trainer.data.annotations",
}

__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)

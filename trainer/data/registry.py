"""The data registries, named once: the datasets (`DATASETS`) and the augmentation presets
(`AUGMENT_PRESETS`). Plain data, no heavy imports, so the config can validate against them.

A dataset is a `DatasetSpec`: its class set (a promptkit class set: the label order), its folds,
the names its split files go by (tried in order under the data root and its annotation folders),
the augmentation preset of the paper's code and the run preset carrying the paper's settings.
Adding a dataset is one entry here (and its class set in promptkit when it has new classes).
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the paper's protocol."""

    name: str
    class_set: str  # promptkit class set of its labels
    folds: int
    split_files: tuple[str, ...]  # `{split}` (train | test) and `{fold}` filled in, tried in order
    augment: str  # an AUGMENT_PRESETS name
    preset: str  # the run preset with the paper's settings (trainer.config.preset)

    def split_names(self, fold: int, split: str) -> list[str]:
        return [pattern.format(fold=fold, split=split) for pattern in self.split_files]


_NUMBERED = ("{tag}_set_{fold}_{split}.txt", "{tag}_fold_{fold}_{split}.txt", "set_{fold}_{split}.txt",
             "fold_{fold}_{split}.txt")


def _numbered(tag: str, *extra: str) -> tuple[str, ...]:
    return tuple(p.replace("{tag}", tag) for p in _NUMBERED) + extra


DATASETS: dict[str, DatasetSpec] = {
    "dfew": DatasetSpec("dfew", "dfew", 5, _numbered("DFEW", "{split}(single-labeled)/set_{fold}.csv",
                                                     "{split}/set_{fold}.csv"), augment="dfew", preset="dfew"),
    "ferv39k": DatasetSpec("ferv39k", "ferv39k", 1, ("FERV39K_{split}.txt", "ferv39k_{split}.txt", "{split}.txt"),
                           augment="ferv39k", preset="ferv39k"),
    "mafw": DatasetSpec("mafw", "mafw", 5, _numbered("MAFW"), augment="mafw", preset="mafw"),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The registered dataset `name` (case-insensitive); a DataError naming the known ones otherwise."""
    spec = DATASETS.get(str(name).lower())
    if spec is None:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return spec


@dataclass(frozen=True)
class SynthSettings:
    """The synthetic face-world set's settings with their defaults, named once: `trainer synth`,
    `trainer.data.synthetic.generate` (which validates them) and the run config's `data.synth_*`
    fields take theirs from here (the `default` run preset then asks for more clips per class)."""

    train_per_class: int = 40
    test_per_class: int = 15
    size: int = 96  # frame size in pixels
    seed: int = 0
    min_frames: int = 16
    max_frames: int = 40
    quality: int = 90  # JPEG quality
    style: str = "cartoon"  # cartoon (the world's) | chalk | sketch (held out from pretraining)


SYNTH = SynthSettings()


@dataclass(frozen=True)
class AugmentPreset:
    """Training augmentation: random-sized crop + flip + optional brightness jitter and rotation."""

    name: str = "custom"
    crop: bool = True
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    brightness: float = 0.0  # factor drawn from [1 - b, 1 + b]
    rotation: float = 0.0  # degrees, angle drawn from [-r, r]

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise DataError(f"augment scale must satisfy 0 < min <= max <= 1, got {self.scale!r}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise DataError(f"augment ratio must satisfy 0 < min <= max, got {self.ratio!r}")
        if not 0 <= self.brightness < 1:
            raise DataError(f"augment brightness must be in [0, 1), got {self.brightness!r}")
        if not 0 <= self.rotation <= 180:
            raise DataError(f"augment rotation must be in [0, 180] degrees, got {self.rotation!r}")


# The paper's code: every dataset a random-sized crop (area 0.08-1, aspect 3/4-4/3) and a horizontal
# flip; DFEW adds brightness jitter 0.5, FERV39k a rotation of up to 4 degrees. `light` suits small
# synthetic images, `none` is a plain resize.
AUGMENT_PRESETS: dict[str, AugmentPreset] = {
    "dfew": AugmentPreset("dfew", brightness=0.5),
    "ferv39k": AugmentPreset("ferv39k", rotation=4.0),
    "mafw": AugmentPreset("mafw"),
    "light": AugmentPreset("light", scale=(0.6, 1.0), ratio=(0.9, 1.1), brightness=0.2),
    "none": AugmentPreset("none", crop=False, hflip=False),
}


def augment_preset(name: str) -> AugmentPreset:
    """The named preset: dfew | ferv39k | mafw (the paper's), light (small images), none."""
    preset = AUGMENT_PRESETS.get(str(name).lower())
    if preset is None:
        raise DataError(f"unknown augmentation preset {name!r}; expected one of {', '.join(AUGMENT_PRESETS)}")
    return preset

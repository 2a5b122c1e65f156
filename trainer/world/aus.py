"""Facial action units of the synthetic face world and the table that mixes them into classes.

An expression is a vector of action-unit (AU) intensities in [0, 1], after Ekman and Friesen's
Facial Action Coding System. The renderer moves brows, lids, nose and lips by these numbers; the
captions describe them in plain words. A class is not one fixed face: each AU of a class is present
with a probability and, when present, drawn with its own intensity, so two clips of one class differ
and classes overlap as real ones do (fear shares brow and lid raises with surprise, anger shares the
lowered brows and a wrinkled nose with disgust, sadness shares the lowered lip corners with disgust).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptkit.classes import BUILTIN_CLASS_SETS

CLASSES = BUILTIN_CLASS_SETS["dfew"]  # the 7-class label order (owned by promptkit.classes)


@dataclass(frozen=True)
class ActionUnit:
    key: str  # short name used in the table and the code
    facs: str  # FACS number(s)
    name: str  # FACS name


AUS: tuple[ActionUnit, ...] = (
    ActionUnit("inner_brow_raise", "AU1", "inner brow raiser"),
    ActionUnit("outer_brow_raise", "AU2", "outer brow raiser"),
    ActionUnit("brow_lower", "AU4", "brow lowerer"),
    ActionUnit("upper_lid_raise", "AU5", "upper lid raiser"),
    ActionUnit("cheek_raise", "AU6", "cheek raiser"),
    ActionUnit("lid_tighten", "AU7", "lid tightener"),
    ActionUnit("lid_droop", "AU41/43", "lid droop"),
    ActionUnit("nose_wrinkle", "AU9", "nose wrinkler"),
    ActionUnit("upper_lip_raise", "AU10", "upper lip raiser"),
    ActionUnit("lip_corner_pull", "AU12", "lip corner puller"),
    ActionUnit("lip_corner_depress", "AU15", "lip corner depressor"),
    ActionUnit("lip_stretch", "AU20", "lip stretcher"),
    ActionUnit("lip_press", "AU23/24", "lip tightener / presser"),
    ActionUnit("lips_part", "AU25", "lips part"),
    ActionUnit("jaw_drop", "AU26", "jaw drop"),
)
AU_KEYS = tuple(a.key for a in AUS)
AU_INDEX = {k: i for i, k in enumerate(AU_KEYS)}
N_AUS = len(AUS)

# class -> {AU: (probability present, lowest intensity, highest intensity)} at the apex.
CLASS_AUS: dict[str, dict[str, tuple[float, float, float]]] = {
    "happiness": {"lip_corner_pull": (1.0, 0.6, 1.0), "cheek_raise": (0.85, 0.4, 0.9),
                  "lips_part": (0.5, 0.3, 0.8), "jaw_drop": (0.15, 0.2, 0.4)},
    "sadness": {"inner_brow_raise": (0.9, 0.5, 1.0), "brow_lower": (0.5, 0.3, 0.6),
                "lip_corner_depress": (0.9, 0.5, 1.0), "lid_droop": (0.6, 0.4, 0.9)},
    "neutral": {},
    "anger": {"brow_lower": (1.0, 0.6, 1.0), "lid_tighten": (0.8, 0.4, 0.9),
              "upper_lid_raise": (0.35, 0.3, 0.6), "lip_press": (0.8, 0.5, 1.0),
              "upper_lip_raise": (0.2, 0.3, 0.6), "nose_wrinkle": (0.2, 0.3, 0.6)},
    "surprise": {"inner_brow_raise": (1.0, 0.6, 1.0), "outer_brow_raise": (1.0, 0.6, 1.0),
                 "upper_lid_raise": (0.9, 0.5, 1.0), "jaw_drop": (0.9, 0.5, 1.0),
                 "lips_part": (0.9, 0.5, 1.0)},
    "disgust": {"nose_wrinkle": (1.0, 0.6, 1.0), "upper_lip_raise": (0.85, 0.5, 1.0),
                "lip_corner_depress": (0.5, 0.3, 0.7), "brow_lower": (0.5, 0.3, 0.7),
                "lid_tighten": (0.3, 0.3, 0.6), "cheek_raise": (0.2, 0.3, 0.5)},
    "fear": {"inner_brow_raise": (1.0, 0.6, 1.0), "outer_brow_raise": (0.7, 0.4, 0.8),
             "brow_lower": (0.8, 0.3, 0.7), "upper_lid_raise": (0.9, 0.6, 1.0),
             "lip_stretch": (0.9, 0.5, 1.0), "lips_part": (0.7, 0.4, 0.9), "jaw_drop": (0.4, 0.3, 0.6)},
}
JITTER = 0.08  # largest AU intensity any face shows at rest (small involuntary movements)


def sample_apex(rng: np.random.Generator, class_name: str) -> np.ndarray:
    """The AU intensities `(N_AUS,)` of one clip's apex: its class's mixture, drawn per clip."""
    out = rng.uniform(0.0, JITTER, size=N_AUS) * (rng.random(N_AUS) < 0.3)
    table = CLASS_AUS[class_name]
    present = []
    for key, (p, lo, hi) in table.items():
        if rng.random() < p:
            out[AU_INDEX[key]] = rng.uniform(lo, hi)
            present.append(key)
    if table and not present:  # a class always shows at least its most likely AU
        key = max(table, key=lambda k: table[k][0])
        out[AU_INDEX[key]] = rng.uniform(*table[key][1:])
    return out


def sample_random(rng: np.random.Generator) -> np.ndarray:
    """A random AU combination, not tied to any class (pretraining sees such faces too)."""
    out = np.zeros(N_AUS)
    n = int(rng.integers(0, 5))
    for i in rng.choice(N_AUS, size=n, replace=False):
        out[i] = rng.uniform(0.3, 1.0)
    return out


def class_table_markdown() -> str:
    """The AU-to-class table as Markdown (for the docs): per AU and class, the probability that the
    AU is present at the apex and its intensity range."""
    head = "| action unit | " + " | ".join(CLASSES) + " |"
    rule = "|---" * (len(CLASSES) + 1) + "|"
    rows = []
    for a in AUS:
        cells = []
        for cls in CLASSES:
            spec = CLASS_AUS[cls].get(a.key)
            cells.append(f"{spec[0]:.2f} ({spec[1]:.1f}-{spec[2]:.1f})" if spec else "")
        rows.append(f"| {a.facs} {a.name} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])

"""Where a saved model comes from, decided once: a native checkpoint file (.pt / .pth), a run folder
(its best.pt, else last.pt), or a folder exported by `trainer export --format hf`. `trainer.load_model`
(`trainer.model.checkpoint.load_model`), `trainer eval | predict | info`, `promptkit compare --run`
and `interpret` all resolve their argument here. An .onnx export is resolved too, but only
`trainer predict` and `trainer.Predictor` run it (they do not need the PyTorch model); everything
else gets one line saying so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainer.errors import CheckpointError
from trainer.model.checkpoint import describe_checkpoint, read_native
from trainer.model.hf_folder import CONFIG_NAME, WEIGHTS_NAME, is_hf_folder, read_hf_folder

ONNX_SUFFIX = ".onnx"


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file as given, an exported model folder, or a run folder's best.pt (else
    last.pt); a CheckpointError naming what is needed otherwise: a path that does not exist, a
    protocol folder (one sub-run is needed) or a run folder without a checkpoint."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.exists():
        raise CheckpointError(f"{p} does not exist; give a trainer run folder, a checkpoint file (.pt) "
                              "or an exported model folder")
    if not p.is_dir():
        raise CheckpointError(f"{p} is neither a checkpoint file nor a run folder")
    if is_hf_folder(p):
        return p
    for name in ("best.pt", "last.pt"):
        if (p / name).is_file():
            return p / name
    subs = sorted(q.name for q in p.glob("fold*_seed*") if q.is_dir())
    if subs:
        raise CheckpointError(f"{p} holds a protocol run ({', '.join(subs[:3])}{', ...' if len(subs) > 3 else ''}); "
                              f"give one sub-run folder, e.g. {p / subs[0]}")
    if (p / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{p} has {WEIGHTS_NAME} but no {CONFIG_NAME} written by `trainer export`; "
                              "the exported folder is incomplete (export it again)")
    raise CheckpointError(f"run folder {p} has no checkpoint (no best.pt or last.pt); finish training it with "
                          f"`trainer run --out {p}`, or give a run folder or a checkpoint file (.pt) that has one")


def is_onnx(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX


def read_source(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """(the checkpoint dict, the resolved file or folder) for any PyTorch source of a model."""
    resolved = resolve_checkpoint(path)
    if resolved.is_dir():
        return read_hf_folder(resolved), resolved
    if is_onnx(resolved):
        raise CheckpointError(f"{resolved} is an ONNX export: only `trainer predict` and trainer.Predictor run it; "
                              "give the run folder, .pt or exported folder it came from")
    return read_native(resolved), resolved


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """`describe_checkpoint` of any source (`trainer info`): a .pt, a run folder or an exported folder."""
    obj, resolved = read_source(path)
    return describe_checkpoint(resolved, obj)

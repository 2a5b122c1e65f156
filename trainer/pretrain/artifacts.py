"""What `trainer pretrain` writes: fp16 safetensors weights, the open_clip config and a card.

The folder appears whole or not at all: everything is written into a hidden sibling folder that
is renamed into place at the end, and an existing `--out` is refused before any work starts.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.model.tinyface import CARD_NAME, WEIGHTS_NAME, file_sha256
from trainer.pretrain.config import PretrainError


def check_out(out: Path) -> Path:
    """Refuse an --out that exists (a folder is never written into) or sits under a file."""
    out = Path(out).expanduser().absolute()
    if out.exists():
        raise PretrainError(f"{out} already exists; pretraining never writes into an existing folder, "
                            "choose a new --out")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PretrainError(f"{parent} is a file, not a folder; choose another --out")
            break
    return out


def _save_safetensors(state: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' save_file, its own error turned into the OSError it reports (`os error N`), so a
    full disk or a missing permission is handled like any other write failure."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(state, str(path))  # no metadata map: its key order is not stable across processes
    except SafetensorError as exc:
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found.group(1)) if found else errno.EIO
        raise OSError(code, os.strerror(code) if found else str(exc)) from exc


def save_pretrained(out: Path, model: nn.Module, model_cfg: dict[str, Any],
                    card: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Write weights (fp16), config.json and card.json to `out` atomically; returns `out` and the
    card as written (with the weights' sha256 and size)."""
    out = check_out(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        tmp.mkdir(parents=True)
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
        _save_safetensors(state, tmp / WEIGHTS_NAME)
        os.chmod(tmp / WEIGHTS_NAME, 0o644)
        (tmp / "config.json").write_text(json.dumps({"model_cfg": model_cfg, "quick_gelu": True},
                                                    indent=2, sort_keys=True) + "\n", encoding="utf-8")
        card = {**card, "weights_sha256": file_sha256(tmp / WEIGHTS_NAME),
                "weights_bytes": (tmp / WEIGHTS_NAME).stat().st_size}
        (tmp / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.rename(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise PretrainError(f"cannot write the pretrained model to {out}: {reason}; nothing was kept") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, card

"""`trainer export --format hf`: a folder in the Hugging Face hub layout (`config.json`,
`model.safetensors`, `README.md`), which `huggingface_hub.upload_folder` can upload as it is and
`trainer.load_model(DIR)` / every command that takes a checkpoint can read. The folder format is
`trainer.model.hf_folder`'s; the card is `trainer.export.card`'s. A PEFT delta checkpoint is
rebuilt over its base weights first, so the folder holds every weight (the base merged in); where
the base is absent the export stops with the checkpoint's own one-line error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from promptkit.fileio import write_atomic

from trainer.errors import ExportError
from trainer.export.card import model_card, run_facts
from trainer.model.checkpoint import frames_per_clip, model_from_payload
from trainer.model.hf_folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, is_hf_folder, write_hf_folder
from trainer.model.sources import read_source


def _check_out(out: Path) -> None:
    """`out` may be new, empty, or an earlier export (replaced); anything else is refused."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder; give a folder for --format hf")
    if out.is_dir() and any(out.iterdir()) and not is_hf_folder(out):
        raise ExportError(f"--out {out} already holds other files; give a new or empty folder")


def export_hf(source: str | Path, out: str | Path, *, base_weights: str | None = None,
              license_id: str | None = None) -> dict[str, Any]:
    """Write the model of `source` (a run folder, a .pt, or an exported folder) into the folder
    `out`; returns {"format", "files", "source", "export_seconds", "sha256", "facts"}."""
    out = Path(out).expanduser()
    _check_out(out)
    start = time.perf_counter()
    obj, resolved = read_source(source)
    if resolved.resolve() == out.resolve():
        raise ExportError(f"--out {out} is the folder being exported; give another folder")
    model = model_from_payload(obj["model"], base_weights=base_weights, what=str(resolved)).eval()
    facts = run_facts(obj)
    num_segments = frames_per_clip(obj, model)
    source_info = {"path": str(resolved), "kind": obj.get("kind"), "epoch": facts.get("epoch"),
                   "delta_base": (obj["model"].get("base_weights") or None)}
    meta = {"text": obj.get("text"), "num_segments": num_segments, "source": source_info,
            "run_config": obj.get("run_config")}
    config = write_hf_folder(model, out, meta)
    card = model_card(out.name or str(out), config, facts, license_id)
    try:
        write_atomic(out / CARD_NAME, card)
    except OSError as exc:
        raise ExportError(f"cannot write {out / CARD_NAME}: {exc.strerror or exc}") from None
    files = [str(out / name) for name in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)]
    return {"format": "hf", "files": files, "source": str(resolved), "export_seconds": time.perf_counter() - start,
            "sha256": config["weights"]["sha256"], "facts": facts,
            "size_bytes": sum(Path(f).stat().st_size for f in files)}

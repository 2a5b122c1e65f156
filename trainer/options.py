"""The one mapping from command-line options to a RunConfig, used by `trainer run` and `promptkit
compare` (library code: no Typer here, the commands pass their option values through).

Which option sets which field is declared once, on the field (`trainer.declare.switch`):
`cli_options` maps the flat values onto the nested config from those declarations, a parse hook
where a flag is not one-to-one with its field (`--text template:NAME`, `--fold N` for compare);
`trainer run` reads `--fold` (a list or `all`) and `--seeds` itself as the protocol's runs.

The layers stay those of `trainer.config.resolve_config`: preset -> `--config FILE` -> options ->
`--set`. Decisions the options imply are applied to the layered config directly, between the
options and `--set`: `--descriptions` without `--text` makes the descriptions the texts; a
`--backbone` without `--pretrained` keeps the preset's weights only when they are a tag of that
backbone; hand-made lists with a dataset preset keep the preset's settings and class set but not
its split files; `--classes` without `--descriptions` takes that class set's own first descriptor
set (`v1`); a lone `--test-list` (evaluation only) stands in for the train list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from trainer.config import RunConfig, apply_set, config_from_dict, layered_config
from trainer.declare import declared
from trainer.errors import ConfigError
from trainer.model.families import weights_fit


def cli_options(**values: Any) -> dict[str, Any]:
    """The nested options layer from the commands' flat option values (None: not given), keyed by
    the switches' names (`frames=8` -> data.num_segments): mapped by the declarations on the config
    fields (`trainer.declare`), the one place a switch is named."""
    by_name = {d.switch.name: d for d in declared(RunConfig)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise TypeError(f"cli_options: no switch is declared as {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        spec, node = by_name[name], out
        for part in spec.section:
            node = node.setdefault(part, {})
        node.update(spec.fields(value))
    text = out.get("text", {})
    if "descriptions" in text and values.get("text") is None:
        text["source"] = "descriptions"  # --descriptions alone: the descriptions are the texts
    return out


def given(options: dict[str, Any]) -> bool:
    """Whether any option in the nested options layer was given."""
    return any(given(v) if isinstance(v, dict) else v is not None for v in options.values())


def preset_name(preset_option: str | None, options: dict[str, Any]) -> str:
    """`--preset`, else the `--dataset`'s preset, else `default`."""
    return preset_option or (options.get("data") or {}).get("dataset") or "default"


def config_from_options(preset_option: str | None, config_file: str | Path | None, options: dict[str, Any],
                        sets: Sequence[str] = (), *, evaluate_only: bool = False) -> RunConfig:
    """The RunConfig of these command-line options (see the module docstring for the layers).

    `evaluate_only`: nothing trains (`promptkit compare` without --train), so a lone --test-list is
    enough; the train list is then the test list and never read.
    """
    name = preset_name(preset_option, options)
    data = {k: v for k, v in (options.get("data") or {}).items() if v is not None}
    if evaluate_only and data.get("test_list") and not data.get("train_list") and not data.get("dataset"):
        data["train_list"] = data["test_list"]
    raw = layered_config(name, config_file, {**options, "data": data})
    model = options.get("model") or {}
    if model.get("backbone") is not None and model.get("pretrained") is None \
            and not weights_fit(model["backbone"], raw["model"].get("pretrained")):
        # --backbone without --pretrained: the preset's weights belong to its own backbone
        raw["model"] = {**raw["model"], "pretrained": None}
    if data.get("train_list") is not None and data.get("dataset") is None and name != "default":
        # hand-made lists with a dataset preset: the preset's settings and class set, not its split files
        raw["data"] = {**raw["data"], "dataset": None, **({} if data.get("classes") else {"classes": name})}
    if data.get("classes") is not None and (options.get("text") or {}).get("descriptions") is None:
        # --classes without --descriptions: that class set's own first descriptor set, not the
        # preset's (whose texts are written for the preset's classes)
        raw["text"] = {**raw.get("text", {}), "descriptions": "v1"}
    for assignment in sets:
        raw = apply_set(raw, assignment)
    config = config_from_dict(raw)
    if (options.get("model") or {}).get("negative_weight") is not None and not config.model.negatives:
        raise ConfigError("--negative-weight weighs the negative descriptions of --negatives; give --negatives too")
    return config


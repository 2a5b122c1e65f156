"""Declare once: switches on the config fields build the CLI, registries name datasets and backbone
families once, and one error root covers both packages."""

from __future__ import annotations

import inspect
import pkgutil

import pytest

import promptkit
from promptkit.errors import ToolkitError

import trainer
from trainer.config import RunConfig, resolve_config
from trainer.declare import COMPARE, RUN, declared
from trainer.errors import ConfigError, TrainerError
from trainer.options import cli_options, config_from_options


def _error_classes(package) -> list[type]:
    found = []
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith(".errors"):
            continue
        module = __import__(info.name, fromlist=["_"])
        found += [obj for obj in vars(module).values()
                  if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == info.name]
    return found


def test_every_error_of_both_packages_derives_from_the_one_root():
    classes = _error_classes(promptkit) + _error_classes(trainer)
    assert len(classes) > 20
    assert [c.__name__ for c in classes if not issubclass(c, ToolkitError)] == []
    assert issubclass(TrainerError, ToolkitError)


def test_a_trainer_error_in_a_promptkit_command_is_one_line(tmp_path):
    from cli_runner import run_cli

    result = run_cli("compare", "--fold", "all", "--out", tmp_path / "c")
    assert result.code == 1 and result.out == ""
    assert result.err.strip().splitlines() == ["error: --fold takes one fold number here (e.g. --fold 2); got 'all'"]


def test_each_switch_is_declared_once_and_reaches_its_field():
    names = [d.switch.name for d in declared(RunConfig)]
    assert len(names) == len(set(names))
    assert {"mixup", "label_smoothing", "layer_decay", "balanced_sampling", "test_views", "frames", "accum"} <= set(names)
    compare = {d.switch.name for d in declared(RunConfig, COMPARE)}
    assert compare < {d.switch.name for d in declared(RunConfig, RUN)}
    assert "mixup" not in compare and "test_list" in compare
    config = config_from_options(None, None, cli_options(frames=4, accum=2, batch=4, mixup=0.4, layer_decay=0.5,
                                                         balanced_sampling=True, text="template:photo_of"))
    assert (config.data.num_segments, config.model.num_frames, config.optim.accum_steps) == (4, 4, 2)
    assert (config.optim.mixup, config.optim.layer_decay, config.data.balanced_sampling) == (0.4, 0.5, True)
    assert (config.text.source, config.text.template) == ("template", "photo_of")
    with pytest.raises(TypeError, match="no_such"):
        cli_options(no_such=1)


def test_every_declared_switch_is_an_option_of_its_commands(capsys):
    from trainer.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for spec in declared(RunConfig, RUN):
        assert spec.switch.flags[0].split("/")[0] in help_text


def test_a_new_field_with_a_declaration_becomes_a_run_option(monkeypatch):
    """Adding a switch is the field: the generated command gets the option, the mapping sets the field."""
    import dataclasses

    from trainer.commands.switches import switch_parameters
    from trainer.declare import switch

    base = RunConfig

    @dataclasses.dataclass
    class Extended(base):
        warmup: int = dataclasses.field(default=0, metadata=switch("--warmup", help="Warm-up epochs."))

    monkeypatch.setattr("trainer.commands.switches.RunConfig", Extended)
    monkeypatch.setattr("trainer.options.RunConfig", Extended)
    param = next(p for p in switch_parameters(RUN) if p.name == "warmup")
    assert param.default.param_decls == ("--warmup",) and param.default.default is None
    assert cli_options(warmup=3)["warmup"] == 3


def test_datasets_and_augment_presets_come_from_the_registry():
    from trainer.data.registry import AUGMENT_PRESETS, DATASETS, dataset_spec

    for name, spec in DATASETS.items():
        raw = resolve_config(spec.preset, options={"data": {"data_root": "."}})
        assert raw.data.dataset == name and raw.data.augment == spec.augment in AUGMENT_PRESETS
    assert dataset_spec("DFEW").split_names(3, "train")[0] == "DFEW_set_3_train.txt"
    with pytest.raises(TrainerError, match="unknown dataset"):
        dataset_spec("imagenet")
    with pytest.raises(ConfigError, match="data.augment"):
        resolve_config("default", sets=["data.augment=heavy"])


def test_backbone_families_decide_sizes_and_weights():
    from trainer.model.config import ModelConfig
    from trainer.model.families import FAMILIES, OPEN_CLIP, family

    assert family("ViT-B-32") is OPEN_CLIP and family("tiny") is FAMILIES["tiny"]
    assert not family("tiny").has_weights and family("tinyface").has_weights
    assert ModelConfig(backbone="tiny", image_size=64).image_size == 64
    with pytest.raises(TrainerError, match="one of"):
        ModelConfig(backbone="tiny", image_size=48)
    assert family("tinyface").model_cfg("tinyface", None)["vision_cfg"]["image_size"] == 64


def test_peft_names_match_the_methods():
    from trainer.model.config import PEFT
    from trainer.model.peft import METHODS

    assert set(PEFT) == {"none", *METHODS}


def test_a_bare_class_set_name_names_its_own_set_for_the_run_as_for_the_store():
    from trainer.inputs import resolve_class_set

    config = resolve_config("default", options={"text": {"descriptions": "mafw"}})
    assert resolve_class_set(config).name == "mafw"  # the store reads `mafw` as mafw/latest
    assert resolve_class_set(resolve_config("default", options={"text": {"descriptions": "v1"}})).name == "dfew"


def test_the_run_summary_names_the_method_switches_that_are_on():
    from pathlib import Path

    from trainer.commands.run_view import config_summary

    plain = config_summary(resolve_config("default").to_dict(), Path("r"))
    assert [line for line in plain if line.strip().startswith("texts")] == ["  texts   descriptions dfew/v1"]
    on = resolve_config("default", options={"optim": {"mixup": 0.2}, "data": {"balanced_sampling": True},
                                            "model": {"negatives": True}})
    texts = next(line for line in config_summary(on.to_dict(), Path("r")) if line.strip().startswith("texts"))
    assert texts.endswith("; negatives, balanced sampling, mixup 0.2")


def test_the_docs_switch_table_is_the_declarations():
    from pathlib import Path

    from trainer.declare import switch_table

    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("<!-- switches:begin -->\n", 1)[1].split("\n<!-- switches:end -->", 1)[0]
    assert table.splitlines() == switch_table(RunConfig), "regenerate it: python -m trainer.declare"

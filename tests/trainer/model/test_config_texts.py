"""ModelConfig validation and ClassTexts sources (no model is built here, except for budgets)."""

from __future__ import annotations

import pytest

from trainer.errors import TrainerError
from trainer.model import ClassTexts, ModelConfig, build_model
from trainer.model.errors import ModelConfigError, TextsError


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"position": "start"}, "position must be one of end, front, middle, got 'start'"),
        ({"mode": "probe"}, "mode must be one of"),
        ({"n_ctx": -1}, "n_ctx must be an integer >= 0, got -1"),
        ({"temperature": 0}, "temperature must be a positive number, got 0"),
        ({"normalize": "imagenet"}, "normalize must be one of none, clip"),
        ({"backbone": "tiny", "image_size": 48}, "must be one of (32, 64), got 48"),
        ({"position": "front", "n_ctx": 0}, "needs n_ctx > 0"),
        ({"temporal_depth": 0}, "temporal_depth must be an integer >= 1"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ModelConfigError) as info:
        ModelConfig(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, TrainerError)


def test_config_dict_round_trip_and_unknown_keys():
    cfg = ModelConfig(backbone="tiny", n_ctx=4, mode="mean")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelConfigError, match=r"unknown model config keys \['ctx_len'\]"):
        ModelConfig.from_dict({**cfg.to_dict(), "ctx_len": 3})


def test_class_texts_sources():
    names = ClassTexts.from_class_names(["happiness", "sad_face"])
    assert names.texts == ("happiness.", "sad face.") and names.source == "class_names"
    assert names.content_hash.startswith("sha256:")
    tmpl = ClassTexts.from_template(["anger"], "an expression of {{ class_name }}.")
    assert tmpl.texts == ("an expression of anger.",)
    shipped = ClassTexts.from_template(["anger"], "photo_of")
    assert shipped.texts == ("a photo of anger.",)
    assert ClassTexts.from_dict(names.to_dict()) == names


def test_class_texts_from_descriptor_set():
    from types import SimpleNamespace as NS

    ds = NS(classes=[NS(name="happiness", description="a smiling mouth."), NS(name="anger", description="a frown.")],
            set_id="dfew/v3", content_hash="sha256:abc", class_set="dfew", version=3)
    texts = ClassTexts.from_descriptor_set(ds)
    assert texts.classes == ("happiness", "anger") and texts.texts == ("a smiling mouth.", "a frown.")
    assert texts.source == "descriptors:dfew/v3" and texts.content_hash == "sha256:abc"


def test_class_texts_from_shipped_descriptor_set():
    from promptkit.store import Store, resolve_store_root

    ds = Store(resolve_store_root(None)).load("dfew/v1")
    texts = ClassTexts.from_descriptor_set(ds)
    assert len(texts) == 7 and texts.classes[0] == "happiness"
    model = build_model(ModelConfig(backbone="tiny"), texts)  # shipped descriptions fit 77 - 2 - 8 tokens
    assert model.prompt_learner.eos_index.max() < 77


@pytest.mark.parametrize(
    "classes,texts,message",
    [
        ((), (), "at least one class"),
        (("a", "b"), ("x",), "got 2 class names but 1 texts"),
        (("a", "a"), ("x", "y"), "must be unique"),
        (("a",), ("  ",), "the text for class 'a' is empty"),
    ],
)
def test_class_texts_reject_bad_input(classes, texts, message):
    with pytest.raises(TextsError, match=message):
        ClassTexts(classes, texts)


def test_description_over_the_token_budget():
    long = ", ".join(["raised eyebrows"] * 40)
    with pytest.raises(TextsError, match=r"class 'b' has \d+ tokens but 8 contexts leave room for 67"):
        build_model(ModelConfig(backbone="tiny"), ClassTexts(("a", "b"), ("fine.", long)))


def test_ctx_init_phrase():
    model = build_model(ModelConfig(backbone="tiny", n_ctx=4, ctx_init="an expression of a"), ClassTexts.from_class_names(["x", "y"]))
    ctx = model.prompt_learner.ctx  # (2, 4, D): the phrase's embeddings for every class
    assert ctx.shape[:2] == (2, 4) and (ctx[0] == ctx[1]).all()
    with pytest.raises(ModelConfigError, match="is 3 tokens but n_ctx is 8"):
        build_model(ModelConfig(backbone="tiny", ctx_init="a photo of"), ClassTexts.from_class_names(["x"]))


def test_class_count_and_order_checks():
    texts = ClassTexts.from_class_names(["happiness", "sadness", "neutral"])
    texts.check_classes(["happiness", "sadness", "neutral"])
    with pytest.raises(TextsError, match="have 3 classes but the data has 4"):
        texts.check_classes(["happiness", "sadness", "neutral", "anger"])
    with pytest.raises(TextsError, match="put 'neutral' at label 2 but the data has 'anger'"):
        texts.check_classes(["happiness", "sadness", "anger"])

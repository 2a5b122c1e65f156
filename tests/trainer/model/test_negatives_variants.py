"""Negative descriptions (FineCLIPER) and several descriptions per class (CuPL) in DFERCLIP."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.model import ClassTexts, ModelConfig, build_model
from trainer.model.checkpoint import load_model, save_model
from trainer.model.errors import ModelConfigError, TextsError

CLASSES = ("happiness", "sadness", "anger")
TEXTS = ("lip corners pulled up, cheeks raised.", "inner brows raised, lip corners pulled down.",
         "brows lowered and pulled together, lips pressed tight.")
NEGATIVES = ("furrowed brows, downturned mouth corners.", "mouth corners turned up, jaw dropped.",
             "raised eyebrows, lip corners pulled up.")
VARIANTS = (("mouth corners turned up.", "cheeks raised, lips parted.", "lower eyelids pushed up."),
            ("drooping upper eyelids.", "downturned mouth corners, heavy upper lids."),
            ("knitted eyebrows, narrowed eyes.",))
FULL = ClassTexts(CLASSES, TEXTS, "test", negatives=NEGATIVES, variants=VARIANTS)


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"backbone": "tiny", "n_ctx": 4, "temporal_heads": 2, "temporal_head_dim": 16,
                          "temporal_mlp_dim": 64, **kw})


def frames(b=4, t=16, size=32, seed=0):
    return torch.rand(b, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def encode(model, learner) -> torch.Tensor:
    """Every prompt of a learner through the text encoder, without truncation: (P, E) normalised."""
    feats = model.text_encoder(learner(), learner.eos_index, truncate=False)
    return F.normalize(feats.float(), dim=-1)


def test_negatives_subtract_weighted_similarity():
    torch.manual_seed(0)
    model = build_model(tiny(negatives=True, negative_weight=0.7), FULL).eval()
    clips = frames()
    with torch.no_grad():
        logits = model(clips)
        video = F.normalize(model.video_features(clips).float(), dim=-1)
        positive, negative = encode(model, model.prompt_learner), encode(model, model.negative_learner)
    expected = (video @ positive.t() - 0.7 * video @ negative.t()) / 0.01
    assert torch.allclose(logits, expected, atol=1e-4)
    plain = build_model(tiny(), FULL)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("negative_learner.")})
    with torch.no_grad():
        assert not torch.allclose(plain.eval()(clips), logits, atol=1e-3)


def test_negatives_have_their_own_trained_context():
    torch.manual_seed(0)
    model = build_model(tiny(negatives=True), FULL)
    assert model.negative_learner.ctx.shape == model.prompt_learner.ctx.shape == (3, 4, 64)
    assert model.negative_learner.ctx.data_ptr() != model.prompt_learner.ctx.data_ptr()
    prompt_params = {id(p) for p in model.parts()["prompt"]}
    assert {id(model.prompt_learner.ctx), id(model.negative_learner.ctx)} == prompt_params
    model.train()(frames()).logsumexp(-1).sum().backward()
    assert model.negative_learner.ctx.grad.abs().sum() > 0


def test_multi_descriptions_average_normalised_features_behind_one_class_context():
    torch.manual_seed(0)
    model = build_model(tiny(multi_descriptions=True), FULL).eval()
    learner = model.prompt_learner
    assert learner.ctx.shape == (3, 4, 64) and learner.n_prompts == 6
    with torch.no_grad():
        per_prompt = encode(model, learner)  # (6, E)
        got = model.text_features()
        prompts = learner()
    starts = [0, 3, 5, 6]
    for c in range(3):
        mean = per_prompt[starts[c]:starts[c + 1]].mean(0)
        assert torch.allclose(got[c], F.normalize(mean, dim=0), atol=1e-5)
        for row in range(starts[c], starts[c + 1]):  # every description of class c behind c's context
            assert torch.equal(prompts[row, 1:5], learner.ctx[c])


def test_one_description_each_equals_the_plain_model():
    single = ClassTexts(CLASSES, TEXTS, "test", variants=tuple((t,) for t in TEXTS))
    torch.manual_seed(0)
    multi = build_model(tiny(multi_descriptions=True), single).eval()
    torch.manual_seed(0)
    plain = build_model(tiny(), single).eval()
    plain.load_state_dict(multi.state_dict())
    clips = frames()
    with torch.no_grad():
        assert torch.allclose(multi(clips), plain(clips), atol=1e-5)


def test_checkpoint_round_trip_keeps_negatives_and_variants(tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny(negatives=True, multi_descriptions=True), FULL).eval()
    path = save_model(model, tmp_path / "m.pt")
    again = load_model(path).eval()
    assert again.texts == FULL and again.config.negatives and again.config.multi_descriptions
    clips = frames()
    with torch.no_grad():
        assert torch.allclose(again(clips), model(clips), atol=1e-6)


def test_refusals():
    plain = ClassTexts(CLASSES, TEXTS, "descriptors:dfew/v1")
    with pytest.raises(TextsError, match="no negative descriptions"):
        build_model(tiny(negatives=True), plain)
    with pytest.raises(TextsError, match="one description per class"):
        build_model(tiny(multi_descriptions=True), plain)
    with pytest.raises(ModelConfigError, match="has no text side"):
        ModelConfig(backbone="tiny", mode="linear_probe", negatives=True)
    with pytest.raises(ModelConfigError, match="negative_weight must be a number in"):
        ModelConfig(negative_weight=-1)
    with pytest.raises(ModelConfigError, match="no negative descriptions"):
        build_model(tiny(), FULL).negative_text_features()
    with pytest.raises(TextsError, match="2 negative descriptions for 3 classes"):
        ClassTexts(CLASSES, TEXTS, negatives=NEGATIVES[:2])
    with pytest.raises(TextsError, match="'anger' needs at least one"):
        ClassTexts(CLASSES, TEXTS, variants=VARIANTS[:2] + ((),))
    long = ClassTexts(CLASSES, TEXTS, negatives=NEGATIVES[:2] + ("very " * 80 + "tense.",))
    with pytest.raises(TextsError, match=r"class 'anger' \(negative\) has \d+ tokens"):
        build_model(tiny(negatives=True), long)


def test_texts_from_descriptor_set_need_what_is_asked(tmp_path):
    from promptkit.store import Store

    store = Store(tmp_path)  # empty: the shipped sets
    v2 = store.load("dfew/v2")
    texts = ClassTexts.from_descriptor_set(v2, negatives=True, variants=True)
    assert texts.negatives == tuple(e.negative.description for e in v2.classes)
    assert texts.variants == tuple(tuple(e.variants) for e in v2.classes)
    assert ClassTexts.from_dict(texts.to_dict()) == texts
    assert "negatives" not in ClassTexts.from_descriptor_set(v2).to_dict()  # older readers see the old shape
    v1 = store.load("dfew/v1")
    with pytest.raises(TextsError, match=r"--negatives: set dfew/v1 has no negative descriptions.*promptkit generate --negatives"):
        ClassTexts.from_descriptor_set(v1, negatives=True)
    with pytest.raises(TextsError, match=r"--multi-descriptions: set dfew/v1 has no variants.*--variants"):
        ClassTexts.from_descriptor_set(v1, variants=True)
    order = [2, 0, 1]
    reordered = texts.reordered(order, tuple(texts.classes[i] for i in order))
    assert reordered.negatives == tuple(texts.negatives[i] for i in order)
    assert reordered.variants[0] == texts.variants[2] and reordered.texts[1] == texts.texts[0]

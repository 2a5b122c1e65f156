"""DFERCLIP on the tiny backbone: shapes, modes, what trains, text encoder cut, caching, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.model import ClassTexts, ModelConfig, autocast_for, build_model
from trainer.model.backbone import create_backbone
from trainer.model.dferclip import DFERCLIP, set_trainable
from trainer.model.errors import InputError, ModelConfigError

TEXTS = ClassTexts.from_template(
    ["happiness", "sadness", "mild surprise"],
    "{% if class_name == 'sadness' %}tears, a downward turned mouth, drooping upper eyelids and a wrinkled "
    "forehead{% else %}an expression of {{ class_name }}{% endif %}.",
)


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"backbone": "tiny", "temporal_heads": 2, "temporal_head_dim": 16, "temporal_mlp_dim": 64, **kw})


def frames(b=2, t=16, size=32, seed=0):
    return torch.rand(b, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["dfer", "mean", "linear_probe", "finetune", "zeroshot"])
def test_shapes_and_trainable_parts(mode):
    torch.manual_seed(0)
    model = build_model(tiny(mode=mode), TEXTS)
    logits = model(frames())
    assert logits.shape == (2, 3) and logits.dtype == torch.float32 and torch.isfinite(logits).all()
    expected = {
        "dfer": {"image", "temporal", "prompt"},
        "mean": {"image", "prompt"},
        "linear_probe": {"head"},
        "finetune": {"image", "head"},
        "zeroshot": set(),
    }[mode]
    assert set(model.parts()) == expected
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert "text_encoder" not in trainable and "logit_scale" not in trainable
    if expected:
        logits.sum().backward()
        for params in model.parts().values():
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_param_groups_give_each_part_its_lr():
    model = build_model(tiny(), TEXTS)
    groups = model.param_groups({"image": 1e-5, "temporal": 1e-2, "prompt": 1e-3, "head": 0.1})
    by_name = {g["name"]: g for g in groups}
    assert {k: g["lr"] for k, g in by_name.items()} == {"image": 1e-5, "temporal": 1e-2, "prompt": 1e-3}
    assert by_name["prompt"]["params"] == [model.prompt_learner.ctx]
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in groups for p in g["params"]) == n_trainable
    with pytest.raises(ModelConfigError, match="no learning rate for the trainable part 'temporal'"):
        model.param_groups({"image": 1e-5, "prompt": 1e-3})
    with pytest.raises(ModelConfigError, match="unknown parameter parts"):
        model.param_groups({"image": 1, "temporal": 1, "prompt": 1, "visual": 1})


@pytest.mark.parametrize("position,class_specific", [("end", True), ("front", True), ("middle", False)])
def test_truncated_text_encoder_equals_full_length(position, class_specific):
    torch.manual_seed(1)
    model = build_model(tiny(position=position, class_specific=class_specific), TEXTS).train()
    model.text_truncation = True
    short = model.text_features()
    short.sum().backward()
    grad_short = model.prompt_learner.ctx.grad.clone()
    model.prompt_learner.ctx.grad = None
    model.text_truncation = False
    full = model.text_features()
    full.sum().backward()
    torch.testing.assert_close(short, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_short, model.prompt_learner.ctx.grad, rtol=1e-4, atol=1e-6)
    eos = model.prompt_learner.eos_index
    assert int(eos.max()) + 1 < 77 and len(set(eos.tolist())) == 3  # prompts of different lengths


def test_eos_pooling_matches_open_clip_encode_text():
    """Zero-shot prompts are plain text: features must equal open_clip's own encode_text."""
    torch.manual_seed(2)
    cfg = tiny(mode="zeroshot")
    backbone = create_backbone(cfg, load_weights=False)
    model = DFERCLIP(ModelConfig(**{**cfg.to_dict(), "image_size": 32}), TEXTS, backbone)
    set_trainable(model)
    import open_clip

    tokens = open_clip.tokenize(list(TEXTS.texts))  # (3, 77)
    with torch.no_grad():
        expected = F.normalize(backbone.clip.encode_text(tokens), dim=-1)
    torch.testing.assert_close(model.text_features(), expected, rtol=1e-5, atol=1e-6)
    assert model.prompt_learner.eos_index.tolist() == tokens.argmax(-1).tolist()


def test_prompt_layouts_put_context_where_asked():
    torch.manual_seed(3)
    for position in ("end", "front", "middle"):
        model = build_model(tiny(position=position, n_ctx=4), TEXTS)
        learner = model.prompt_learner
        prompts = learner()  # (3, 77, D)
        ctx = learner.ctx[0]  # (4, D)
        n = int(learner.eos_index[0]) - 1 - 4  # text tokens of class 0
        start = {"end": 1, "front": 1 + n, "middle": 1}[position]
        torch.testing.assert_close(prompts[0, start:start + (2 if position == "middle" else 4)], ctx[: 2 if position == "middle" else 4])
        torch.testing.assert_close(prompts[0, 0], learner.embeddings[0, 0])  # SOS first
        torch.testing.assert_close(prompts[0, int(learner.eos_index[0])], learner.embeddings[0, n + 1])  # EOS


def test_text_features_cached_in_eval_and_refreshed_after_a_step():
    torch.manual_seed(4)
    model = build_model(tiny(), TEXTS)
    model.eval()
    first = model.text_features()
    assert model.text_features() is first  # cached
    model.train()
    opt = torch.optim.SGD(model.param_groups({"image": 0.0, "temporal": 0.0, "prompt": 10.0}), lr=0.1)
    model(frames()).sum().backward()
    opt.step()
    model.eval()
    assert not torch.allclose(model.text_features(), first)
    frozen = build_model(tiny(mode="zeroshot"), TEXTS).train()
    assert frozen.text_features() is frozen.text_features()  # nothing text-side learns: cached in training too


def test_determinism():
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = build_model(tiny(), TEXTS).eval()
        outs.append(model(frames(seed=1)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.testing.assert_close(model(frames(seed=1)), outs[1], rtol=0, atol=0)


def test_grad_checkpointing_and_normalisation():
    torch.manual_seed(6)
    base = build_model(tiny(), TEXTS)
    torch.manual_seed(6)
    ckpt = build_model(tiny(grad_checkpointing=True), TEXTS)
    x = frames()
    torch.testing.assert_close(base(x), ckpt(x), rtol=1e-5, atol=1e-5)
    torch.manual_seed(6)
    clipnorm = build_model(tiny(normalize="clip"), TEXTS)
    assert not torch.allclose(base(x), clipnorm(x))
    assert clipnorm.preprocessing()["mean"] is not None and base.preprocessing()["mean"] is None


def test_fewer_frames_and_bad_inputs():
    model = build_model(tiny(num_frames=8), TEXTS)
    assert model(frames(t=4)).shape == (2, 3)
    with pytest.raises(InputError, match="at most 8"):
        model(frames(t=9))
    with pytest.raises(InputError, match=r"\(B, T, 3, H, W\)"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(InputError, match="divide uint8"):
        model(torch.zeros(1, 2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(InputError, match="resize"):
        model(frames(size=64))
    assert model.image_size == 32 and build_model(tiny(image_size=64), TEXTS).image_size == 64


def test_autocast_for_is_plain_on_cpu():
    with autocast_for("cpu", "bf16"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ModelConfigError, match="precision"):
        autocast_for("cpu", "fp8")

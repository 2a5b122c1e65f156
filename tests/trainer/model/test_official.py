"""Import of the authors' checkpoints: a tiny model written in THEIR layout, checked against an
independent re-implementation of their forward pass (written here from their maths)."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from trainer.model import ModelConfig, load_model
from trainer.model.backbone import create_backbone
from trainer.model.errors import CheckpointError
from trainer.model.official import import_official, read_official_state

M = 8
DESCRIPTIONS = [
    "a smiling mouth, raised cheeks, wrinkled eyes, and arched eyebrows.",
    "tears, a downward turned mouth, drooping upper eyelids, and a wrinkled forehead.",
    "relaxed facial muscles, a straight mouth.",
]
HEADS, HEAD_DIM, MLP = 8, 64, 96


def _randomise(state: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key == "logit_scale":
            out[key] = torch.tensor(math.log(100.0))
        elif value.dim() == 1 and "weight" in key:  # layer norm gains: not all ones, to catch swaps
            out[key] = 1 + 0.3 * torch.randn(value.shape, generator=gen)
        else:  # std 1.6 / sqrt(fan-in): 0.2 at the tiny width, like-trained scales for ViT-B-32
            fan_in = value[0].numel() if value.dim() > 1 else 64
            out[key] = 1.6 / math.sqrt(fan_in) * torch.randn(value.shape, generator=gen)
    return out


def _tokenize(texts: list[str]) -> torch.Tensor:
    import open_clip

    return open_clip.tokenize(texts)  # (n, 77)


def _authors_state(gen: torch.Generator, backbone: str = "tiny") -> dict[str, torch.Tensor]:
    """A state dict laid out like the authors' GenerateModel (before DataParallel)."""
    clip = _randomise(create_backbone(ModelConfig(backbone=backbone), load_weights=False).clip.state_dict(), gen)
    width, dim = clip["ln_final.weight"].shape[0], clip["text_projection"].shape[1]
    sd: dict[str, torch.Tensor] = {}
    tokens = _tokenize([" ".join(["X"] * M) + " " + d for d in DESCRIPTIONS])
    emb = F.embedding(tokens, clip["token_embedding.weight"])  # (n, 77, width)
    sd["prompt_learner.ctx"] = 0.02 * torch.randn(len(DESCRIPTIONS), M, width, generator=gen)
    sd["prompt_learner.token_prefix"] = emb[:, :1].clone()
    sd["prompt_learner.token_suffix"] = emb[:, 1 + M:].clone()
    for key, value in clip.items():
        if key.startswith(("transformer.", "positional_embedding", "ln_final.", "text_projection")):
            sd["text_encoder." + key] = value
        if key.startswith("visual."):
            sd["image_encoder." + key[len("visual."):]] = value
        sd["clip_model_." + key] = value
    t = "temporal_net."
    sd[t + "cls_token"] = torch.randn(1, 1, dim, generator=gen)
    sd[t + "pos_embedding"] = torch.randn(1, 17, dim, generator=gen)
    inner = HEADS * HEAD_DIM
    layer = t + "temporal_transformer.layers.0."
    shapes = {
        "0.fn.norm.weight": (dim,), "0.fn.norm.bias": (dim,), "0.fn.fn.to_qkv.weight": (3 * inner, dim),
        "0.fn.fn.to_out.0.weight": (dim, inner), "0.fn.fn.to_out.0.bias": (dim,),
        "1.fn.norm.weight": (dim,), "1.fn.norm.bias": (dim,), "1.fn.fn.net.0.weight": (MLP, dim),
        "1.fn.fn.net.0.bias": (MLP,), "1.fn.fn.net.3.weight": (dim, MLP), "1.fn.fn.net.3.bias": (dim,),
    }
    for key, shape in shapes.items():
        base = 1.0 if key.endswith("norm.weight") else 0.0
        sd[layer + key] = base + 0.1 * torch.randn(shape, generator=gen)
    return sd


# ---------------------------------------------------------------- independent reference (their maths)
def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-5)


def _clip_block(x, sd, p, heads, mask=None):
    h = _ln(x, sd, p + ".ln_1")
    b, n, d = h.shape
    q, k, v = (h @ sd[p + ".attn.in_proj_weight"].t() + sd[p + ".attn.in_proj_bias"]).chunk(3, -1)
    q, k, v = (z.reshape(b, n, heads, d // heads).transpose(1, 2) for z in (q, k, v))
    att = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
    if mask is not None:
        att = att + mask
    out = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
    x = x + out @ sd[p + ".attn.out_proj.weight"].t() + sd[p + ".attn.out_proj.bias"]
    h = _ln(x, sd, p + ".ln_2") @ sd[p + ".mlp.c_fc.weight"].t() + sd[p + ".mlp.c_fc.bias"]
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU
    return x + h @ sd[p + ".mlp.c_proj.weight"].t() + sd[p + ".mlp.c_proj.bias"]


def _reference_logits(sd: dict[str, torch.Tensor], video: torch.Tensor, heads: tuple[int, int] = (2, 2)) -> torch.Tensor:
    """Their forward; `heads` = (vision, text) attention heads (OpenAI CLIP: width // 64)."""
    n, t, _, h, w = video.shape
    img = video.reshape(n * t, 3, h, w)
    p = "image_encoder."
    patch = sd[p + "conv1.weight"].shape[-1]
    x = F.conv2d(img, sd[p + "conv1.weight"], stride=patch).flatten(2).transpose(1, 2)  # (N, grid^2, width)
    x = torch.cat([sd[p + "class_embedding"].expand(x.shape[0], 1, -1), x], 1) + sd[p + "positional_embedding"]
    x = _ln(x, sd, p + "ln_pre")
    layers = len({k.split(".")[3] for k in sd if k.startswith(p + "transformer.resblocks.")})
    for i in range(layers):
        x = _clip_block(x, sd, f"{p}transformer.resblocks.{i}", heads=heads[0])
    frames = (_ln(x[:, 0], sd, p + "ln_post") @ sd[p + "proj"]).reshape(n, t, -1)
    # temporal transformer
    q = "temporal_net."
    x = torch.cat([sd[q + "cls_token"].expand(n, 1, -1), frames], 1) + sd[q + "pos_embedding"][:, : t + 1]
    lp = q + "temporal_transformer.layers.0."
    h = _ln(x, sd, lp + "0.fn.norm")
    qq, kk, vv = (h @ sd[lp + "0.fn.fn.to_qkv.weight"].t()).chunk(3, -1)
    qq, kk, vv = (z.reshape(n, t + 1, HEADS, HEAD_DIM).transpose(1, 2) for z in (qq, kk, vv))
    att = torch.einsum("bhid,bhjd->bhij", qq, kk) * HEAD_DIM ** -0.5
    out = torch.einsum("bhij,bhjd->bhid", att.softmax(-1), vv).transpose(1, 2).reshape(n, t + 1, -1)
    x = x + out @ sd[lp + "0.fn.fn.to_out.0.weight"].t() + sd[lp + "0.fn.fn.to_out.0.bias"]
    h = _ln(x, sd, lp + "1.fn.norm") @ sd[lp + "1.fn.fn.net.0.weight"].t() + sd[lp + "1.fn.fn.net.0.bias"]
    h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    x = x + h @ sd[lp + "1.fn.fn.net.3.weight"].t() + sd[lp + "1.fn.fn.net.3.bias"]
    video_feat = x[:, 0]
    video_feat = video_feat / video_feat.norm(dim=-1, keepdim=True)
    # text side: [prefix][ctx][suffix], full 77 positions, causal mask, EOS = argmax of the tokens
    prompts = torch.cat([sd["prompt_learner.token_prefix"], sd["prompt_learner.ctx"], sd["prompt_learner.token_suffix"]], 1)
    x = prompts + sd["text_encoder.positional_embedding"]
    mask = torch.full((77, 77), float("-inf")).triu(1)
    layers = len({k.split(".")[3] for k in sd if k.startswith("text_encoder.transformer.resblocks.")})
    for i in range(layers):
        x = _clip_block(x, sd, f"text_encoder.transformer.resblocks.{i}", heads=heads[1], mask=mask)
    x = _ln(x, sd, "text_encoder.ln_final")
    eos = _tokenize([" ".join(["X"] * M) + " " + d for d in DESCRIPTIONS]).argmax(-1)
    text = x[torch.arange(x.shape[0]), eos] @ sd["text_encoder.text_projection"]
    text = text / text.norm(dim=-1, keepdim=True)
    return video_feat @ text.t() / 0.01


@pytest.fixture(scope="module")
def authors_ckpt(tmp_path_factory):
    """Their file: DataParallel prefixes, whole model inside state_dict, an unimportable recorder."""
    tmp = tmp_path_factory.mktemp("official")
    module_dir = tmp / "mods"
    module_dir.mkdir()
    (module_dir / "throwaway_recorder.py").write_text(textwrap.dedent("""
        import numpy as np
        class RecorderMeter:
            def __init__(self, n):
                self.total_epoch = n
                self.epoch_losses = np.zeros((n, 2), dtype=np.float32)
    """))
    sys.path.insert(0, str(module_dir))
    try:
        import throwaway_recorder

        recorder = throwaway_recorder.RecorderMeter(5)
        gen = torch.Generator().manual_seed(7)
        state = _authors_state(gen)
        obj = {"epoch": 12, "state_dict": {"module." + k: v for k, v in state.items()},
               "best_acc": torch.tensor(61.5), "optimizer": {"state": {}, "param_groups": []}, "recorder": recorder}
        path = tmp / "DFEW-set1-model_best.pth"
        torch.save(obj, path)
    finally:
        sys.path.remove(str(module_dir))
        sys.modules.pop("throwaway_recorder", None)
        (module_dir / "throwaway_recorder.py").unlink()
    return path, state


def test_import_round_trip_matches_reference(authors_ckpt, tmp_path):
    path, state = authors_ckpt
    report = import_official(path, tmp_path / "native.pth", temporal_heads=HEADS)
    assert report.backbone == "tiny" and report.n_ctx == M and report.class_specific
    assert report.epoch == 12 and report.best_acc == pytest.approx(61.5)
    model = load_model(tmp_path / "native.pth")
    assert not model.training
    assert model.config.normalize == "none" and model.config.num_frames == 16
    video = torch.rand(2, 16, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(video)
        ref = _reference_logits(state, video)
    assert ours.shape == (2, len(DESCRIPTIONS))
    # the issue asks 1e-4 relative; fp32 reaches ~1e-6, and a tighter bound catches subtle slips (GELU variant)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_description_tokens_recovered(authors_ckpt, tmp_path):
    path, _ = authors_ckpt
    report = import_official(path, tmp_path / "native.pth", classes=["happy", "sad", "calm"], temporal_heads=HEADS)
    assert report.texts == tuple(DESCRIPTIONS)
    assert report.classes == ("happy", "sad", "calm")


def test_unimportable_pickle_code_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    state = {"module.prompt_learner.ctx": torch.zeros(1)}
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": state, "recorder": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a DFER-CLIP checkpoint"):
        read_official_state(path)
    assert not marker.exists()


def test_not_a_dferclip_checkpoint(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {"visual.conv1.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a DFER-CLIP checkpoint"):
        import_official(path, tmp_path / "out.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read"):
        import_official(junk, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_class_count_mismatch(authors_ckpt, tmp_path):
    path, _ = authors_ckpt
    with pytest.raises(CheckpointError, match="3 classes but 2 class names"):
        import_official(path, tmp_path / "o.pth", classes=["a", "b"], temporal_heads=HEADS)


def test_load_model_points_to_import(authors_ckpt):
    path, _ = authors_ckpt
    with pytest.raises(CheckpointError, match="import-official"):
        load_model(path)


def _cli(argv):
    from trainer.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    return exit_info.value.code


def test_cli_import_then_info(authors_ckpt, tmp_path, capsys):
    path, _ = authors_ckpt
    out = tmp_path / "native.pth"
    assert _cli(["import-official", path, out, "--classes", "happy,sad,calm"]) == 0
    assert "raised cheeks" in capsys.readouterr().out
    assert _cli(["info", out, "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["n_ctx"] == M and summary["texts"]["classes"] == ["happy", "sad", "calm"]
    assert summary["imported_from"]["epoch"] == 12


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    plain = tmp_path / "plain.pth"
    torch.save({"weights": torch.zeros(1)}, plain)
    assert _cli(["import-official", plain, tmp_path / "o.pth"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "not a DFER-CLIP checkpoint" in err[0]
    assert _cli(["info", plain]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a DFER-CLIP toolkit checkpoint" in err[0]


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").environ.get("TRAINER_FULL_CHECKS"), reason="~90 s on 2 CPU cores; set TRAINER_FULL_CHECKS=1")
def test_vit_b32_import_matches_reference_at_full_size(tmp_path):
    """The paper's architecture (ViT-B/32, 16 x 224 x 224, [0, 1] input): within 1e-4 relative."""
    state = _authors_state(torch.Generator().manual_seed(11), backbone="ViT-B-32")
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "a.pth")
    report = import_official(tmp_path / "a.pth", tmp_path / "n.pth")
    assert report.backbone == "ViT-B-32"
    model = load_model(tmp_path / "n.pth")
    video = torch.rand(2, 16, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours, ref = model(video), _reference_logits(state, video, heads=(12, 8))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())

"""`promptkit embed` through the CLI on the shipped dfew/v1 set with the tiny random backbone."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from cli_runner import run_cli as promptkit


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    out = tmp_path_factory.mktemp("embed") / "npy"
    result = promptkit("embed", "dfew/v1", "--backbone", "tiny", "--descriptors", "--top-k", "4",
                       "--out", out, "--store", out.parent / "store")
    assert result.code == 0, result.err
    return SimpleNamespace(out=out, result=result, emb=np.load(out / "embeddings.npy"),
                           index=json.loads((out / "index.json").read_text()))


def test_embeddings_rows_follow_the_index(embedded):
    from promptkit.store import Store

    ds = Store(embedded.out.parent / "store").load("dfew/v1")
    rows = embedded.index["rows"]
    n_desc = sum(len(e.descriptors) for e in ds.classes)
    assert embedded.emb.shape == (7 + n_desc, 64) and embedded.index["shape"] == [7 + n_desc, 64]
    assert [(r["class"], r["kind"]) for r in rows[:7]] == [(e.name, "description") for e in ds.classes]
    assert rows[7] == {"class": "happiness", "kind": "descriptor", "text": ds.classes[0].descriptors[0]}
    assert np.allclose(np.linalg.norm(embedded.emb, axis=1), 1.0, atol=1e-5)
    assert embedded.index["set_id"] == "dfew/v1" and embedded.index["content_hash"] == ds.content_hash


def test_embeddings_are_the_models_own_text_features(embedded):
    """The description rows equal DFERCLIP's zero-shot class text features on the same backbone."""
    from promptkit.store import Store

    from trainer.evaluate.embed import load_backbone
    from trainer.model import ClassTexts, ModelConfig
    from trainer.model.dferclip import DFERCLIP

    ds = Store(embedded.out.parent / "store").load("dfew/v1")
    backbone = load_backbone("tiny", None, seed=0)
    model = DFERCLIP(ModelConfig(backbone="tiny", mode="zeroshot"), ClassTexts.from_descriptor_set(ds), backbone)
    features = model.text_features().detach().numpy()  # (7, 64)
    assert np.allclose(embedded.emb[:7], features, atol=1e-5)


def test_similarity_and_closest_pairs(embedded):
    desc = embedded.emb[:7]
    sim = desc @ desc.T
    lines = (embedded.out / "similarity.csv").read_text().splitlines()
    saved = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    assert np.allclose(saved, sim, atol=1e-5)
    pairs = json.loads((embedded.out / "closest_pairs.json").read_text())
    assert len(pairs) == 4 and [p["rank"] for p in pairs] == [1, 2, 3, 4]
    assert [p["cosine"] for p in pairs] == sorted((p["cosine"] for p in pairs), reverse=True)
    off = sim - 2 * np.eye(7)
    i, j = np.unravel_index(np.argmax(off), off.shape)
    classes = embedded.index["classes"]
    assert {pairs[0]["a"], pairs[0]["b"]} == {classes[i], classes[j]}
    assert pairs[0]["a"] in embedded.result.out and pairs[0]["b"] in embedded.result.out
    assert (embedded.out / "closest_pairs.csv").read_text().startswith("rank,a,b,cosine")
    assert (embedded.out / "similarity.png").read_bytes()[:4] == b"\x89PNG"


def test_pt_and_parquet_hold_the_same_vectors(embedded, tmp_path):
    import pandas as pd
    import torch

    for fmt in ("pt", "parquet"):
        result = promptkit("embed", "dfew/v1", "--backbone", "tiny", "--format", fmt,
                           "--out", tmp_path / fmt, "--store", tmp_path / "store")
        assert result.code == 0, result.err
    saved = torch.load(tmp_path / "pt" / "embeddings.pt", weights_only=True)
    assert np.allclose(saved["embeddings"].numpy(), embedded.emb[:7], atol=1e-6)
    assert saved["rows"] == embedded.index["rows"][:7]
    frame = pd.read_parquet(tmp_path / "parquet" / "embeddings.parquet")
    assert list(frame.columns) == ["class", "kind", "text", "embedding"]
    assert np.allclose(np.stack(frame["embedding"].to_numpy()), embedded.emb[:7], atol=1e-6)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["dfew/v1", "--format", "csv"], "--format must be one of npy, pt, parquet"),
        (["dfew/v9"], "dfew/v9"),
        (["dfew/v1", "--backbone", "ViT-Nope"], "ViT-Nope"),
        (["dfew/v1", "--backbone", "ViT-Nope-99"], "unknown model: open_clip does not know the backbone 'ViT-Nope-99'"),
        (["dfew/v1", "--top-k", "0"], "--top-k"),
    ],
)
def test_bad_input_is_one_error_line(args, fragment, tmp_path):
    result = promptkit("embed", *args, "--out", tmp_path / "o", "--store", tmp_path / "store")
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.err
    assert not (tmp_path / "o").exists()


def test_an_out_that_cannot_be_written_is_one_error_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = promptkit("embed", "dfew/v1", "--backbone", "tiny", "--out", blocker / "o",
                       "--store", tmp_path / "store")
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: cannot write ") and "a-file" in lines[0], result.err
    assert blocker.read_text() == "not a folder"


def test_interpret_output_that_cannot_be_written_is_an_eval_error(tmp_path):
    from trainer.errors import EvalError
    from trainer.evaluate.interpret import InterpretResult, save_interpretation

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = InterpretResult(str(tmp_path / "best.pt"), "cosine", 1, "test", 1, False, ["a"], [])
    with pytest.raises(EvalError, match="cannot write .*a-file"):
        save_interpretation(result, blocker / "out.json")

"""The shipped descriptor sets: valid, hand-written, in label order, within the budget at M = 8."""

from __future__ import annotations

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.classes import BUILTIN_CLASS_SETS
from promptkit.resources import shipped_descriptions_dir
from promptkit.store import Store
from promptkit.tokens import budget, count_tokens


@pytest.mark.parametrize("class_set", ["dfew", "ferv39k", "mafw"])
def test_shipped_v1(class_set, tmp_path):
    ds = Store(tmp_path).load(f"{class_set}/v1")  # an empty store falls back to the shipped sets
    assert ds.shipped and ds.path.parent.parent == shipped_descriptions_dir()
    assert ds.class_names == list(BUILTIN_CLASS_SETS[class_set])
    assert ds.provenance["source"] == "hand-written" and ds.n_ctx == 8
    for entry in ds.classes:
        assert len(entry.descriptors) >= 5 and entry.dropped == []
        assert entry.tokens == count_tokens(entry.description) <= budget(8)

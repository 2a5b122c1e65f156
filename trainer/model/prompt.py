"""The prompt learner: [SOS] [ctx_1 .. ctx_M] [class text] [EOS] with learnable context vectors.

One code path builds every variant. The frozen token embeddings of `[SOS] text [EOS] pad..` and
the context vectors form one pool per prompt; a fixed index per prompt says which pool row goes to
which prompt position, so `end`, `front` and `middle` differ only in that index, and one
`torch.gather` assembles all prompts.

A learner prompts either each class's text (one prompt per class), its negative description, or
its several descriptions (`rows="variants"`: one prompt per description, all of a class's
descriptions behind the same class context; `row_class` says which class each prompt belongs to).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from promptkit.tokens import CONTEXT_LENGTH, EOS_ID, SOS_ID, SPECIAL_TOKENS, description_budget, encode_text

from trainer.errors import ModelConfigError, TextsError
from trainer.model.texts import ClassTexts

CTX_STD = 0.02


class PromptLearner(nn.Module):
    """Owns the context parameter (n_cls, M, D) or (M, D); keeps the frozen text embeddings as buffers.

    Buffers, for P prompts (P = n_cls unless rows="variants"): `token_ids` (P, L0) = SOS, text, EOS,
    zero padding with L0 = context_length - M; `embeddings` (P, L0, D) their token embeddings;
    `order` (P, L0 + M) pool indices; `eos_index` (P,) where each prompt's EOS lands; `row_class`
    (P,) the class of each prompt.
    """

    def __init__(
        self,
        token_embedding: nn.Embedding,
        texts: ClassTexts,
        n_ctx: int,
        class_specific: bool = True,
        position: str = "end",
        ctx_init: str | None = None,
        context_length: int = CONTEXT_LENGTH,
        rows: str = "texts",
    ) -> None:
        super().__init__()
        self.n_cls = len(texts)
        self.n_ctx = n_ctx
        self.position = position
        self.rows = rows
        labels, row_texts, row_class = prompt_rows(texts, rows)
        ids = [encode_text(t) for t in row_texts]
        check_budget(labels, ids, n_ctx, context_length)
        token_ids = token_id_table(ids, context_length - n_ctx)  # (P, L0)
        weight = token_embedding.weight
        with torch.no_grad():
            embeddings = token_embedding(token_ids.to(weight.device)).detach().clone()  # (n_cls, L0, D)
        self.register_buffer("token_ids", token_ids)
        self.register_buffer("embeddings", embeddings)
        order, eos = prompt_order([len(x) for x in ids], n_ctx, context_length - n_ctx, position)
        self.register_buffer("order", order)  # (P, L0 + M)
        self.register_buffer("eos_index", eos)  # (P,)
        self.register_buffer("row_class", torch.tensor(row_class, dtype=torch.long), persistent=False)  # (P,)
        dim = weight.shape[1]
        if n_ctx == 0:
            self.register_parameter("ctx", None)
        else:
            if ctx_init is None:
                shape = (self.n_cls, n_ctx, dim) if class_specific else (n_ctx, dim)
                init = torch.empty(shape).normal_(std=CTX_STD)
            else:
                init = phrase_context(token_embedding, ctx_init, n_ctx)  # (M, D)
                if class_specific:
                    init = init.unsqueeze(0).repeat(self.n_cls, 1, 1)  # (n_cls, M, D)
            self.ctx = nn.Parameter(init.to(weight.dtype))  # (n_cls, M, D) or (M, D)

    @property
    def learnable(self) -> bool:
        return self.ctx is not None and self.ctx.requires_grad

    @property
    def length(self) -> int:
        return int(self.order.shape[1])

    @property
    def n_prompts(self) -> int:
        return int(self.order.shape[0])

    def forward(self, length: int | None = None) -> torch.Tensor:
        """Prompt embeddings (P, length, D); `length` keeps only the first positions."""
        n = self.length if length is None else length
        order = self.order[:, :n]  # (P, n)
        if self.ctx is None:
            pool = self.embeddings  # (P, L0, D)
        else:
            if self.ctx.dim() == 3:
                ctx = self.ctx if self.rows != "variants" else self.ctx[self.row_class]  # (P, M, D)
            else:
                ctx = self.ctx.unsqueeze(0).expand(self.n_prompts, -1, -1)  # (P, M, D)
            pool = torch.cat([self.embeddings, ctx.to(self.embeddings.dtype)], dim=1)  # (P, L0 + M, D)
        index = order.unsqueeze(-1).expand(-1, -1, pool.shape[-1])  # (P, n, D)
        return torch.gather(pool, 1, index)  # (P, n, D)


ROWS = ("texts", "negatives", "variants")


def prompt_rows(texts: ClassTexts, rows: str) -> tuple[list[str], list[str], list[int]]:
    """(label for messages, text, class index) of every prompt a learner of `rows` builds."""
    if rows == "texts":
        return [repr(c) for c in texts.classes], list(texts.texts), list(range(len(texts)))
    if rows == "negatives":
        if texts.negatives is None:
            raise TextsError(f"these class texts ({texts.source}) have no negative descriptions; "
                             "use a descriptor set made with `promptkit generate --negatives`")
        return [f"{c!r} (negative)" for c in texts.classes], list(texts.negatives), list(range(len(texts)))
    if rows == "variants":
        if texts.variants is None:
            raise TextsError(f"these class texts ({texts.source}) have one description per class; "
                             "use a descriptor set made with `promptkit generate --samples N --variants`")
        labels, out, owner = [], [], []
        for index, (name, variants) in enumerate(zip(texts.classes, texts.variants)):
            for number, text in enumerate(variants, 1):
                labels.append(f"{name!r} (description {number})")
                out.append(text)
                owner.append(index)
        return labels, out, owner
    raise ModelConfigError(f"prompt rows must be one of {', '.join(ROWS)}, got {rows!r}")


def check_budget(labels: Sequence[str], ids: Sequence[Sequence[int]], n_ctx: int, context_length: int) -> None:
    budget = description_budget(n_ctx, context_length)
    for name, toks in zip(labels, ids):
        if len(toks) > budget:
            raise TextsError(
                f"the text for class {name} has {len(toks)} tokens but {n_ctx} contexts leave room for "
                f"{budget} ({context_length} - {SPECIAL_TOKENS} - {n_ctx}); shorten it (promptkit can fit descriptions) "
                "or use fewer contexts"
            )


def token_id_table(ids: Sequence[Sequence[int]], width: int) -> torch.Tensor:
    """(n_cls, width) long: SOS, ids, EOS, then zeros (CLIP's padding)."""
    table = torch.zeros(len(ids), width, dtype=torch.long)
    for row, toks in enumerate(ids):
        seq = [SOS_ID, *toks, EOS_ID]
        table[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return table


def prompt_order(text_lens: Sequence[int], n_ctx: int, width: int, position: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool indices (n_cls, width + n_ctx) and EOS positions (n_cls,) for each class.

    Pool rows 0..width-1 are the frozen [SOS text EOS pad] embeddings, rows width.. the contexts.
    end: SOS ctx text EOS; front: SOS text ctx EOS; middle: SOS ctx[:M//2] text ctx[M//2:] EOS.
    """
    if position not in ("end", "front", "middle"):
        raise ModelConfigError(f"position must be end, front or middle, got {position!r}")
    ctx = list(range(width, width + n_ctx))
    half = n_ctx // 2
    rows, eos = [], []
    for n in text_lens:
        text = list(range(1, n + 1))
        if position == "end":
            body = ctx + text
        elif position == "front":
            body = text + ctx
        else:
            body = ctx[:half] + text + ctx[half:]
        seq = [0, *body, n + 1, *range(n + 2, width)]  # SOS, body, EOS, padding
        rows.append(seq)
        eos.append(1 + n_ctx + n)
    return torch.tensor(rows, dtype=torch.long), torch.tensor(eos, dtype=torch.long)


def phrase_context(token_embedding: nn.Embedding, phrase: str, n_ctx: int) -> torch.Tensor:
    """(M, D) context initialised from the token embeddings of `phrase` (exactly M tokens)."""
    ids = encode_text(phrase)
    if len(ids) != n_ctx:
        raise ModelConfigError(
            f"ctx_init {phrase!r} is {len(ids)} tokens but n_ctx is {n_ctx}; set n_ctx to {len(ids)} or change the phrase"
        )
    weight = token_embedding.weight
    with torch.no_grad():
        return token_embedding(torch.tensor(ids, device=weight.device)).detach().float().cpu()  # (M, D)

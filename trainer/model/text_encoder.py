"""The frozen CLIP text encoder, run from prompt embeddings and pooled at each prompt's EOS.

Because of the causal mask, positions after the last EOS never influence any EOS output, so
running the transformer over only the first `max(eos) + 1` positions gives the same features as
the full 77-position run, for a fraction of the cost.
"""

from __future__ import annotations

import torch
from torch import nn


class TextEncoder(nn.Module):
    """open_clip's text path (positional embedding, causal transformer, ln_final, projection)."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.transformer = clip.transformer
        self.positional_embedding = clip.positional_embedding  # (77, D)
        self.ln_final = clip.ln_final
        self.text_projection = clip.text_projection  # (D, E) parameter, Linear, or None
        self.register_buffer("attn_mask", clip.attn_mask.clone(), persistent=False)  # (77, 77) additive

    @property
    def context_length(self) -> int:
        return int(self.positional_embedding.shape[0])

    def forward(self, prompts: torch.Tensor, eos_index: torch.Tensor, truncate: bool = True) -> torch.Tensor:
        """prompts (N, L, D), eos_index (N,) -> text features (N, E), unnormalised."""
        length = int(eos_index.max()) + 1 if truncate else prompts.shape[1]
        x = prompts[:, :length] + self.positional_embedding[:length].to(prompts.dtype)  # (N, l, D)
        mask = self.attn_mask[:length, :length]  # (l, l)
        x = self.transformer(x, attn_mask=mask)  # (N, l, D)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eos_index]  # (N, D)
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection  # (N, E)

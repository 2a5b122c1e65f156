"""The temporal transformer: [class token; frame features] + position embeddings -> video feature.

Pre-norm blocks (LayerNorm -> attention -> residual, LayerNorm -> MLP with tanh-approximated GELU
-> residual), no final norm, the class token's output is the video feature. Trained from scratch;
class token and position embeddings start from N(0, 1) as in DFER-CLIP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import InputError


class TemporalBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.head_dim = head_dim
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        # a single head as wide as the input needs no output projection
        self.proj: nn.Module = nn.Identity() if heads == 1 and head_dim == dim else nn.Linear(inner, dim)
        self.mlp_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape  # (B, N, dim)
        qkv = self.qkv(self.attn_norm(x))  # (B, N, 3 * H * d)
        q, k, v = qkv.view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # each (B, H, N, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, d)
        x = x + self.proj(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))  # (B, N, dim)
        h = F.gelu(self.fc1(self.mlp_norm(x)), approximate="tanh")  # (B, N, mlp_dim)
        return x + self.fc2(h)  # (B, N, dim)


class TemporalTransformer(nn.Module):
    """(B, T, dim) frame features -> (B, dim) video feature (the class token's output)."""

    def __init__(self, dim: int, num_frames: int, depth: int = 1, heads: int = 8, head_dim: int = 64, mlp_dim: int = 1024) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))  # (1, 1, dim)
        self.pos_embedding = nn.Parameter(torch.randn(1, num_frames + 1, dim))  # (1, T + 1, dim)
        self.blocks = nn.ModuleList(TemporalBlock(dim, heads, head_dim, mlp_dim) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape  # (B, T, dim)
        if t > self.num_frames:
            raise InputError(f"clips have {t} frames but the temporal model was built for at most {self.num_frames}")
        cls = self.cls_token.expand(b, -1, -1).to(x.dtype)  # (B, 1, dim)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding[:, : t + 1].to(x.dtype)  # (B, T + 1, dim)
        for block in self.blocks:
            x = block(x)
        return x[:, 0]  # (B, dim)

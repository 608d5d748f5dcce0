"""The OMIB network: deterministic TRB encoders, per-view VAEs, the cross-attention fusion (CAN),
the decoders of the warm-up and the fused head (METHOD.md 5)."""

from __future__ import annotations

import torch
from torch import nn

from mmib.networks import ClusterHead, VariationalEncoder, mlp, variational_views


class CrossAttentionFusion(nn.Module):
    """CAN: each view token attends to the other views' tokens; residual, LayerNorm, mean-pool."""

    def __init__(self, dim: int, n_views: int) -> None:
        super().__init__()
        heads = 4 if dim % 4 == 0 else 1
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        # True = may not attend: the diagonal, so a token never attends to itself
        self.register_buffer("mask", torch.eye(n_views, dtype=torch.bool), persistent=False)

    def forward(self, zetas: list[torch.Tensor]) -> torch.Tensor:
        t = torch.stack(zetas, dim=1)  # B x M x H
        out, _ = self.attn(t, t, t, attn_mask=self.mask, need_weights=False)
        return self.norm(t + out).mean(dim=1)


class OMIBNet(nn.Module):
    def __init__(self, dims: list[int], n_classes: int, latent_dim: int, width: int) -> None:
        super().__init__()
        h = latent_dim
        self.latent_dim = h
        self.encoders = nn.ModuleList(mlp(d, width, h) for d in dims)  # the deterministic TRB encoders
        self.decoders = nn.ModuleList(ClusterHead(2 * h, width, n_classes) for _ in dims)
        self.vaes = nn.ModuleList(VariationalEncoder(h, width, h) for _ in dims)
        self.fusion = CrossAttentionFusion(h, len(dims))
        self.head = ClusterHead(h, width, n_classes)

    @property
    def n_views(self) -> int:
        return len(self.encoders)

    def warmup_parameters(self) -> list[nn.Parameter]:
        return [*self.encoders.parameters(), *self.decoders.parameters()]

    def embed(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [enc(x) for enc, x in zip(self.encoders, xs)]

    def fuse(self, zs: list[torch.Tensor], sample: bool
             ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        mus, logvars, zetas = variational_views(self.vaes, zs, sample)
        return mus, logvars, self.fusion(zetas)

"""The CLIB network: variational encoders, weighted fusion, MINE critics and heads (Fig. 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmib.config import ModelParams
from mmib.networks import ClusterHead, MineCritic, VariationalEncoder, WeightedFusion, reparameterise


@dataclass
class Encoded:
    """Per-view posteriors and features of one batch."""

    mus: list[torch.Tensor]
    logvars: list[torch.Tensor]
    hs: list[torch.Tensor]       # h^m (sampled in training, mu otherwise)
    fused: torch.Tensor          # h^f = sum_m w_m h^m


class CLIBNet(nn.Module):
    def __init__(self, dims: list[int], n_clusters: int, model: ModelParams, mine_clamp: float) -> None:
        super().__init__()
        h = model.latent_dim
        self.encoders = nn.ModuleList(VariationalEncoder(d, model.encoder_width, h) for d in dims)
        self.fusion = WeightedFusion(len(dims))
        self.critics = nn.ModuleList(MineCritic(h, h, model.mine_width, mine_clamp) for _ in dims)
        self.cluster_head = ClusterHead(h, model.head_width, n_clusters)
        self.cal_heads = nn.ModuleList(ClusterHead(h, model.head_width, n_clusters) for _ in dims)

    @property
    def n_views(self) -> int:
        return len(self.encoders)

    def ib_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by L_IB: encoders, fusion weights and MINE critics."""
        return [*self.encoders.parameters(), *self.fusion.parameters(), *self.critics.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.cluster_head.parameters(), *self.cal_heads.parameters()]

    def encode(self, xs: list[torch.Tensor], sample: bool) -> Encoded:
        mus, logvars, hs = [], [], []
        for enc, x in zip(self.encoders, xs):
            mu, logvar = enc(x)
            mus.append(mu)
            logvars.append(logvar)
            hs.append(reparameterise(mu, logvar, sample))
        return Encoded(mus, logvars, hs, self.fusion(hs))

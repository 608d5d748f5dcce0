"""The CLIB network: variational encoders, weighted fusion, MINE critics and heads (Fig. 1)."""

from __future__ import annotations

from torch import nn

from mmib.config import ModelParams
from mmib.networks import ClusterHead, Encoded, FusedEncoders, MineCritic, VariationalEncoder, WeightedFusion

__all__ = ["CLIBNet", "Encoded"]


class CLIBNet(FusedEncoders, nn.Module):
    def __init__(self, dims: list[int], n_clusters: int, model: ModelParams, mine_clamp: float) -> None:
        super().__init__()
        h = model.latent_dim
        self.encoders = nn.ModuleList(VariationalEncoder(d, model.encoder_width, h) for d in dims)
        self.fusion = WeightedFusion(len(dims))
        self.critics = nn.ModuleList(MineCritic(h, h, model.mine_width, mine_clamp) for _ in dims)
        self.cluster_head = ClusterHead(h, model.head_width, n_clusters)
        self.cal_heads = nn.ModuleList(ClusterHead(h, model.head_width, n_clusters) for _ in dims)

    def ib_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by L_IB: encoders, fusion weights and MINE critics."""
        return [*self.encoders.parameters(), *self.fusion.parameters(), *self.critics.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.cluster_head.parameters(), *self.cal_heads.parameters()]

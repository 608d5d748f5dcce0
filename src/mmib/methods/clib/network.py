"""The CLIB network: variational encoders, weighted fusion, MINE critics and heads (Fig. 1)."""

from __future__ import annotations

from torch import nn

from mmib.config import ModelParams, WarmupParams
from mmib.networks import (ClusterHead, Decoder, Encoded, FusedEncoders, MineCritic, Projection,
                           VariationalEncoder, WeightedFusion)

__all__ = ["CLIBNet", "Encoded"]


class CLIBNet(FusedEncoders, nn.Module):
    """Encoders, fusion and heads always; MINE critics, decoders and projection heads only
    when ``warmup`` switches them on (``preservation: mine``, ``reconstruction_weight`` > 0,
    ``projection_dim`` > 0)."""

    def __init__(self, dims: list[int], n_clusters: int, model: ModelParams, warmup: WarmupParams) -> None:
        super().__init__()
        h = model.latent_dim
        self.encoders = nn.ModuleList(VariationalEncoder(d, model.encoder_width, h) for d in dims)
        self.fusion = WeightedFusion(len(dims))
        mine = warmup.preservation == "mine"
        self.critics = nn.ModuleList(MineCritic(h, h, model.mine_width, warmup.mine_clamp) for _ in dims if mine)
        recon = warmup.reconstruction_weight > 0
        self.decoders = nn.ModuleList(Decoder(h, model.encoder_width, d) for d in dims if recon)
        proj = warmup.projection_dim
        self.projections = nn.ModuleList(Projection(h, proj) for _ in dims if proj > 0)
        self.cluster_head = ClusterHead(h, model.head_width, n_clusters)
        self.cal_heads = nn.ModuleList(ClusterHead(h, model.head_width, n_clusters) for _ in dims)

    def ib_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by L_IB: encoders, fusion weights, MINE critics, decoders, projections."""
        return [*self.encoders.parameters(), *self.fusion.parameters(), *self.critics.parameters(),
                *self.decoders.parameters(), *self.projections.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.cluster_head.parameters(), *self.cal_heads.parameters()]

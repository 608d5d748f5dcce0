"""The MSDIB network: variational encoders as CLIB's, weighted fusion ``h^s``, and DDC heads
(fused and one per view; Kampffmeyer et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn

from mmib.methods.msdib.config import MSDIBParams
from mmib.networks import FusedEncoders, VariationalEncoder, WeightedFusion


class DDCHead(nn.Module):
    """DDC clustering module: ``Linear(H, k) - ReLU - BN`` hidden layer, then ``Linear(k, C)`` (softmax by caller).

    ``forward`` returns ``(logits, hidden)``; the hidden layer feeds DDC's kernel.
    """

    def __init__(self, latent_dim: int, hidden: int, n_clusters: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.BatchNorm1d(hidden))
        self.out = nn.Linear(hidden, n_clusters)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hid = self.hidden(h)
        return self.out(hid), hid


class MSDIBNet(FusedEncoders, nn.Module):
    """Variational encoders, weighted fusion, the fused DDC head and one head per view (Fig. 1)."""

    def __init__(self, dims: list[int], n_clusters: int, cfg: MSDIBParams) -> None:
        super().__init__()
        h = cfg.latent_dim
        self.encoders = nn.ModuleList(VariationalEncoder(d, cfg.encoder_width, h) for d in dims)
        self.fusion = WeightedFusion(len(dims))
        self.fused_head = DDCHead(h, cfg.ddc_hidden, n_clusters)
        self.view_heads = nn.ModuleList(DDCHead(h, cfg.ddc_hidden, n_clusters) for _ in dims)

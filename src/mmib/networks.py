"""Network building blocks shared by the IB methods (METHOD.md sections 1 and 4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


def mlp(in_dim: int, width: int, out_dim: int) -> nn.Sequential:
    """``in -> w -> w -> out`` with BN + ReLU between: the encoders' and decoders' shape."""
    return nn.Sequential(
        nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Linear(width, out_dim),
    )


class VariationalEncoder(nn.Module):
    """Per-view encoder ``d -> w -> w -> 2H`` (BN + ReLU between); output split into mu, log-variance."""

    def __init__(self, in_dim: int, width: int, latent_dim: int) -> None:
        super().__init__()
        self.net = mlp(in_dim, width, 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        # a bounded log-variance keeps exp() finite early in training
        return mu, logvar.clamp(-10.0, 10.0)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, sample: bool) -> torch.Tensor:
    """``h = mu + sigma * eps`` when sampling (training), ``mu`` otherwise."""
    if not sample:
        return mu
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def variational_views(encoders: Iterable[nn.Module], xs: Iterable[torch.Tensor], sample: bool
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Each view through its variational encoder: the means, log-variances and codes (sampled in
    training, the means otherwise), per view in order."""
    mus, logvars, hs = [], [], []
    for enc, x in zip(encoders, xs):
        mu, logvar = enc(x)
        mus.append(mu)
        logvars.append(logvar)
        hs.append(reparameterise(mu, logvar, sample))
    return mus, logvars, hs


class ClusterHead(nn.Module):
    """``Linear(H, w) - BN - ReLU - Linear(w, C)``; softmax is applied by the caller."""

    def __init__(self, latent_dim: int, width: int, n_clusters: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Linear(width, n_clusters),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class Decoder(nn.Module):
    """Per-view decoder ``H -> w -> w -> d`` (BN + ReLU between), the mirror of the encoder.

    Used by the reconstruction term (``warmup.reconstruction_weight``, a
    switch; MFLVC's autoencoders), never by the paper's reading.
    """

    def __init__(self, latent_dim: int, width: int, out_dim: int) -> None:
        super().__init__()
        self.net = mlp(latent_dim, width, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class Projection(nn.Module):
    """``Linear(H, H) - ReLU - Linear(H, P)``: the space NT-Xent acts in when ``warmup.projection_dim`` > 0.

    Contrast on a separate head (SimCLR, MFLVC's high-level features) leaves
    h^m, which fusion and clustering read, free of the instance-level
    uniformity that NT-Xent imposes.
    """

    def __init__(self, latent_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class MineCritic(nn.Module):
    """Statistics network ``T([a, b])`` of MINE (concat MLP w-w-1), output clamped.

    The first layer acts on the concatenation, ``W [a; b] = W_a a + W_b b``, so
    the joint pairs ``(a_i, b_i)`` and the shuffled pairs ``(a_i, b_perm(i))``
    share the two projections: ``joint_and_marginal`` computes both for the
    cost of one first layer, with exactly the same function as ``forward``.
    """

    def __init__(self, dim_a: int, dim_b: int, width: int, clamp: float) -> None:
        super().__init__()
        self.dim_a = dim_a
        self.first = nn.Linear(dim_a + dim_b, width)
        self.rest = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
        self.clamp = clamp

    def _out(self, pre: torch.Tensor) -> torch.Tensor:
        return self.rest(pre).squeeze(-1).clamp(-self.clamp, self.clamp)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._out(self.first(torch.cat([a, b], dim=1)))

    def joint_and_marginal(self, a: torch.Tensor, b: torch.Tensor, perm: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        w_a, w_b = self.first.weight[:, :self.dim_a], self.first.weight[:, self.dim_a:]
        pa = a @ w_a.t()
        pb = torch.addmm(self.first.bias, b, w_b.t())
        out = self._out(torch.cat([pa + pb, pa + pb[perm]], dim=0))
        n = a.shape[0]
        return out[:n], out[n:]


class WeightedFusion(nn.Module):
    """``h^f = sum_m w_m h^m`` with ``w = softmax(logits)``, logits initialised equal (Section 3.1)."""

    def __init__(self, n_views: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_views))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, hs: list[torch.Tensor]) -> torch.Tensor:
        w = self.weights()
        return sum(w[m] * h for m, h in enumerate(hs))


@dataclass
class Encoded:
    """Per-view posteriors and features of one batch."""

    mus: list[torch.Tensor]
    logvars: list[torch.Tensor]
    hs: list[torch.Tensor]       # h^m (sampled in training, mu otherwise)
    fused: torch.Tensor          # h^f = sum_m w_m h^m


class FusedEncoders:
    """Mixin of the networks with per-view variational encoders and a weighted-mean fusion (CLIB, MSDIB).

    The network defines ``self.encoders`` (one :class:`VariationalEncoder` per
    view) and ``self.fusion`` (:class:`WeightedFusion`).
    """

    encoders: nn.ModuleList
    fusion: WeightedFusion

    @property
    def n_views(self) -> int:
        return len(self.encoders)

    def encode(self, xs: list[torch.Tensor], sample: bool) -> Encoded:
        mus, logvars, hs = variational_views(self.encoders, xs, sample)
        return Encoded(mus, logvars, hs, self.fusion(hs))

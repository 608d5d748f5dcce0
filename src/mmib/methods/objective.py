"""One way for every method to state its objective: named loss terms, each with a weight and a
switch, summed in a fixed order (after the ``Loss`` of DanielTrosten/mvc).

A method computes its terms with the pure functions of its ``losses`` module and hands them to an
:class:`Objective`, which returns the loss to minimise and the detached values reported per batch
(each term under its name, the weighted sum under the objective's name). Terms that are switched
off are never computed when given as callables. The sum runs in the order of ``terms``, starting
from the first enabled term (``w1 * t1 + w2 * t2 + ...``), so the numbers do not depend on how
many terms are off.

A term trained through one tensor but reported as another is a :class:`Surrogate`: the loss takes
``weight * term.loss``, the reported objective ``weight * term.value``, and the term is reported as
``term.value`` (e.g. L_IB inside Eq. 2, trained with MINE's surrogate, reported with its estimate).
A :class:`Bound` is a maximised quantity trained through a surrogate (MINE's bias-corrected gradient
and its Donsker-Varadhan estimate; InfoNCE's cross-entropy and its bound ``log B - loss``): it enters
the reported objective as ``-weight * bound.value``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

import torch


@dataclass(frozen=True)
class Term:
    """One named term of an objective: its weight, and whether it is switched on."""

    name: str
    weight: float = 1.0
    enabled: bool = True


@dataclass(frozen=True)
class Surrogate:
    """A term trained through ``loss`` (it carries the gradient) and reported as ``value``."""

    loss: torch.Tensor
    value: torch.Tensor
    sign = 1.0
    """How ``value`` counts in the reported objective."""


@dataclass(frozen=True)
class Bound(Surrogate):
    """A maximised quantity trained through a surrogate ``loss``: ``value`` is the estimate reported,
    and it enters the reported objective as ``-value``."""

    sign = -1.0


TermValue = Union[torch.Tensor, Surrogate]


@dataclass(frozen=True)
class Objective:
    """``name = sum_k weight_k * term_k`` over the enabled terms, in order."""

    name: str
    terms: tuple[Term, ...]

    def __post_init__(self) -> None:
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names) or self.name in names:
            raise ValueError(f"objective {self.name!r}: term names must be distinct and differ from it: {names}")

    @property
    def enabled(self) -> tuple[str, ...]:
        """The names of the terms that are switched on, in order."""
        return tuple(t.name for t in self.terms if t.enabled)

    def combine(self, values: Mapping[str, TermValue | Callable[[], TermValue]]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss and the reported values of one batch.

        ``values`` maps each enabled term's name to its tensor (or :class:`Bound`), or to a callable
        that computes it (called only when the term is on). With no term on the loss is a zero.
        """
        loss: torch.Tensor | None = None
        reported: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for term in self.terms:
            if not term.enabled:
                continue
            value = values[term.name]
            value = value() if callable(value) else value
            if isinstance(value, Surrogate):
                trained, shown = value.loss, value.value.detach()
                counted = value.sign * shown
            else:
                trained = value
                shown = counted = value.detach()
            loss = term.weight * trained if loss is None else loss + term.weight * trained
            reported = term.weight * counted if reported is None else reported + term.weight * counted
            parts[term.name] = shown
        if loss is None:
            loss = reported = torch.zeros(())
        parts[self.name] = reported
        return loss, parts

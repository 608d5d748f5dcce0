"""The base of every params model: unknown fields refused, values frozen, numbers finite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

NonNeg = Field(ge=0)
Pos = Field(gt=0)


class StrictModel(BaseModel):
    """A params section: ``extra="forbid"`` (a typo is an error), frozen, no inf / NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

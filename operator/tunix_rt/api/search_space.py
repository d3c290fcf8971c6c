"""A sweep's search space (one distribution per parameter) and the algorithms that sample it."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from tunix_rt.api.base import EXACTLY_ONE_OF, ApiModel, cel, cel_rules, field_error
from tunix_rt.api.trainer import wire_param_name


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    RANDINT = "randint"
    CHOICE = "choice"
    GRID = "grid"


RANGED = frozenset({Distribution.UNIFORM, Distribution.LOGUNIFORM, Distribution.RANDINT})
_RANGED_CEL = "self.type in ['uniform', 'loguniform', 'randint']"
FRACTIONAL = frozenset({Distribution.UNIFORM, Distribution.LOGUNIFORM})
"""Distributions that sample fractions: not for integer parameters."""


class SearchParam(ApiModel):
    """A distribution over one trainer parameter: bounds for ranges, values for choice/grid."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            # `values` (untyped items) is invisible to CEL on the API server: the presence of
            # exactly one of low/values is the schema's oneOf (EXACTLY_ONE_OF) below.
            cel(
                f"{_RANGED_CEL} ? (has(self.low) && has(self.high))"
                " : (!has(self.low) && !has(self.high))",
                "uniform, loguniform and randint take low and high; choice and grid take values",
            ),
            cel(
                "!has(self.low) || !has(self.high) || self.low < self.high",
                "low must be less than high",
                ".low",
            ),
            cel(
                "self.type != 'loguniform' || !has(self.low) || self.low > 0.0",
                "loguniform needs low > 0",
                ".low",
            ),
        )
        | {EXACTLY_ONE_OF: ["low", "values"]}
    )

    type: Distribution = Field(
        description="uniform, loguniform (log scale), randint (integers in [low, high)), "
        "choice (one of values, sampled) or grid (every value, enumerated)."
    )
    low: float | None = Field(None, description="Lower bound (uniform, loguniform, randint).")
    high: float | None = Field(
        None, description="Upper bound (uniform, loguniform; randint: exclusive)."
    )
    values: list[Any] | None = Field(
        None, min_length=1, max_length=1000, description="Candidates (choice, grid)."
    )

    @model_validator(mode="after")
    def _shape(self) -> SearchParam:
        kind = self.type.value
        for name, value in (("low", self.low), ("high", self.high)):
            if value is not None and not math.isfinite(value):
                raise field_error(name, f"{name} must be a finite number, got {value}", value)
        if self.type in RANGED:
            for name, value in (("low", self.low), ("high", self.high)):
                if value is None:
                    raise field_error(name, f"type {kind} needs low and high")
            if self.values is not None:
                raise field_error("values", f"type {kind} takes low/high, not values", self.values)
            assert self.low is not None and self.high is not None
            if not self.low < self.high:
                raise field_error(
                    "low", f"low ({self.low:g}) must be less than high ({self.high:g})", self.low
                )
            if self.type is Distribution.LOGUNIFORM and self.low <= 0:
                raise field_error("low", "loguniform needs low > 0", self.low)
            if self.type is Distribution.RANDINT:
                for name, value in (("low", self.low), ("high", self.high)):
                    if not float(value).is_integer():
                        raise field_error(name, "randint bounds must be integers", value)
        else:
            if not self.values:
                raise field_error("values", f"type {kind} needs a non-empty values list")
            for name, value in (("low", self.low), ("high", self.high)):
                if value is not None:
                    raise field_error(name, f"type {kind} takes values, not low/high", value)
            for index, value in enumerate(self.values):
                if not isinstance(value, str | int | float | bool):
                    raise field_error(
                        f"values.{index}", "values must be scalars (number, string, bool)", value
                    )
                if isinstance(value, float) and not math.isfinite(value):
                    raise field_error(
                        f"values.{index}", f"values must be finite numbers, got {value}", value
                    )
        return self

    def candidates(self) -> list[Any]:
        """Values that bound what the sweep can try (for up-front validation)."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.type is Distribution.RANDINT:
            return [int(self.low), int(self.high) - 1]
        return [self.low, self.high]


class Algorithm(StrEnum):
    RANDOM = "random"
    GRID = "grid"
    TPE = "tpe"
    CMAES = "cmaes"
    QMC = "qmc"
    GP = "gp"


MODEL_BASED = frozenset({Algorithm.TPE, Algorithm.CMAES, Algorithm.QMC, Algorithm.GP})
"""Algorithms that are Optuna samplers: they propose one point at a time, so no grid."""
CONTINUOUS_ONLY = frozenset({Algorithm.CMAES, Algorithm.GP})
"""Algorithms that model only ranged parameters; they sample choice entries at random."""
NO_GRID = "grid parameters need algorithm grid or random, not tpe, cmaes, qmc or gp"


def _search_key(key: str) -> str:
    """A trainer parameter in its wire spelling; any other name is kept as written: it
    may be one of the user's own ``trainer.parameters``, which SweepSpec checks."""
    try:
        return wire_param_name(key)
    except ValueError:
        return key


SearchKey = Annotated[str, AfterValidator(_search_key)]

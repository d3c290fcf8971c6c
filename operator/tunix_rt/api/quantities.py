"""Kubernetes resource quantities: the patterns the CRDs carry and their values in numbers."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
"""A memory quantity of a trial (``4Gi``, ``512M``): what Ray Tune's memory resource takes."""
K8S_QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""A non-negative Kubernetes resource.Quantity, as the API server reads pod requests."""
_K8S_QUANTITY = re.compile(K8S_QUANTITY_PATTERN)
_QUANTITY_SUFFIXES = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    **{f"{s}i": float(2 ** (10 * (i + 1))) for i, s in enumerate("KMGTPE")},
}
_QUANTITY_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_value(quantity: str) -> float:
    """A Kubernetes quantity as a number: ``500m`` -> 0.5, ``8Gi`` -> 8589934592."""
    text = quantity.strip()
    if not _K8S_QUANTITY.match(text):
        raise ValueError(f"not a quantity: {quantity!r}")
    match = re.match(r"^([0-9.]+)(.*)$", text)
    assert match is not None
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return float(number + suffix)
    return float(number) * _QUANTITY_SUFFIXES[suffix]


def _quantity_check(example: str, pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a quantity; use a quantity such as {example}")
        return value

    return AfterValidator(check)


def quantity_field(default: str | None, description: str, pattern: str) -> Any:
    return Field(default, description=description, json_schema_extra={"pattern": pattern})


CpuQuantity = Annotated[str, _quantity_check("2 or 500m", _K8S_QUANTITY)]
"""A pod's CPU request (Kubernetes quantity)."""
MemoryQuantity = Annotated[str, _quantity_check("4Gi", _K8S_QUANTITY)]
"""A pod's memory request (Kubernetes quantity)."""
TrialMemory = Annotated[str, _quantity_check("4Gi", re.compile(QUANTITY_PATTERN))]
"""A trial's memory (``QUANTITY_PATTERN``)."""


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``4Gi``, ``512M``, ``1000``) in bytes."""
    number = quantity.rstrip("KMGTik")
    suffix = quantity[len(number) :]
    if suffix not in _QUANTITY_FACTORS:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(number) * _QUANTITY_FACTORS[suffix])

"""Building a settings dataclass from a mapping (environment variables, YAML, a state machine's input),
and checking its values.

dataclass_from_mapping(DriftThresholds, {"psi": "0.2"}, "drift thresholds").psi   # 0.2
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def dataclass_from_mapping(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """Build ``cls`` from ``data``, naming unknown keys and coercing each value to its field's default
    type (so "0.05" from an environment variable or YAML works). Every field needs a default."""
    known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)} (known: {sorted(known)})")
    kinds = {k: type(getattr(cls(), k)) for k in known}
    return cls(**{k: kinds[k](v) for k, v in data.items() if v is not None})


def check_settings(what: str, rules: Iterable[tuple[bool, str]]) -> None:
    """Refuse settings out of range with one ValueError naming every rule broken: ``rules`` are
    (broken?, the rule) pairs, so a caller writes each condition and its message once.

    check_settings("drift thresholds", [(self.psi <= 0, "psi must be > 0")])   # ValueError("drift thresholds: psi ...")
    """
    problems = [rule for broken, rule in rules if broken]
    if problems:
        raise ValueError(f"{what}: " + "; ".join(problems))

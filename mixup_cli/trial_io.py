"""Reading trial configs from files and ``--set KEY=VALUE`` arguments, for the CLI."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from mixup_core.config import ConfigError, TrialConfig, flatten_nested, from_flat
from sweeps.errors import UsageError
from sweeps.spec import yaml_numbers


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"null"`` -> None, ``"true"`` -> True, else the text."""
    for convert in (int, float):
        try:
            value = convert(text)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            break
        return value
    if text.strip().lower() in {"null", "none", "~"}:
        return None
    if text.strip().lower() in {"true", "false"}:
        return text.strip().lower() == "true"
    return text


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["data.rho=0.2", ...]`` -> ``{"data.rho": 0.2, ...}``."""
    updates: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set mixup.alpha=0.5")
        updates[key.strip()] = parse_value(value.strip())
    return updates


def read_trial_file(path: str | Path) -> dict[str, Any]:
    """Dotted trial keys from a trial config file, or from the ``trial`` section of a sweep spec."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    try:
        data = yaml_numbers.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise UsageError(f"{file}: not valid YAML ({str(err).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{file}: expected a mapping of config keys at the top level")
    if "search_space" in data or "trial" in data:  # a sweep spec: its base trial config
        data = data.get("trial") or {}
        if not isinstance(data, dict):
            raise UsageError(f"{file}: trial: expected a mapping of config keys")
    return flatten_nested(data)


def build_trial_config(path: str | None, assignments: list[str]) -> TrialConfig:
    """The trial config from an optional file plus ``--set`` overrides (which win)."""
    flat = read_trial_file(path) if path else {}
    flat.update(parse_assignments(assignments))
    try:
        return from_flat(flat)
    except ConfigError as err:
        source = f"{path}: " if path else ""
        raise UsageError(f"{source}{err}") from None

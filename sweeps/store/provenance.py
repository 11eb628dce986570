"""Where a result came from: the git commit, package versions and host of the code that made it.

Collected once by each driver and written into the records (``sweep.json`` at the start of a
sweep, every trial's ``start`` event), so the records describe themselves: MLflow tags are
always made from the records (:func:`as_tags`), never from whatever checkout runs ``sync``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("mixup-sweeps", "torch", "ray", "mlflow", "optuna", "pyarrow")
TAG_PREFIX = "mixup_sweeps."


def package_versions() -> dict[str, str]:
    versions = {}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def git_commit() -> str:
    """The commit of this package's checkout, or "unknown" (an installed wheel, no git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def loaded_plugins() -> list[dict[str, str]]:
    """Each plugin this process loaded (:mod:`mixup_core.plugins`): name, version (package
    version or source hash), origin and location; none when no plugin API was imported."""
    api = sys.modules.get("mixup_core.plugins")
    if api is None:
        return []
    return [info.as_dict() for _, info in sorted(api.LOADED.items())]


def collect() -> dict[str, Any]:
    """This process's provenance: ``{"git_commit", "versions", "host", "plugins"}``."""
    return {"git_commit": git_commit(), "versions": package_versions(),
            "host": socket.gethostname(), "plugins": loaded_plugins()}


def as_tags(provenance: dict[str, Any] | None) -> dict[str, str]:
    """MLflow tags of a recorded provenance (``mixup_sweeps.git_commit``, ``.host``,
    ``.version.<dist>``); an old record without one gives "unknown" rather than today's."""
    provenance = provenance or {}
    tags = {f"{TAG_PREFIX}git_commit": str(provenance.get("git_commit", "unknown")),
            f"{TAG_PREFIX}host": str(provenance.get("host", "unknown"))}
    for dist, version in (provenance.get("versions") or {}).items():
        tags[f"{TAG_PREFIX}version.{dist}"] = str(version)
    for plugin in provenance.get("plugins") or []:
        tags[f"{TAG_PREFIX}plugin.{plugin.get('name')}"] = \
            f"{plugin.get('version')} ({plugin.get('origin')})"
    return tags

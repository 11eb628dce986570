"""Packs: several of the user's trials trained as one Ray Tune trial (``execution.pack``).

A user trial is one config over the spec's seeds, and it stays the unit of records, MLflow,
Parquet, ``best``, the report and the progress line. With ``pack: N > 1`` the driver groups the
sweep's trials, in plan order, into packs of N; one Tune trial trains one pack as a single
:class:`mixup_core.packed.Pack` of N × seeds members, and reports every member trial's epochs.
The trial id of member j of the Tune trial ``T`` is ``T-jj`` (``abc12_00003-07``).

``pack: auto`` sizes packs so that every free CPU (or GPU) gets one pack, capped by
:data:`MAX_MEMBERS` members per pack (memory: ~3 float32 copies of K·m·d filters per member,
a 20 × 2000 filter bank is 0.5 MB).
"""

from __future__ import annotations

import math
from typing import Any

from mixup_core.errors import ConfigError
from mixup_core.packed import check_packable
from sweeps.errors import SpecError
from sweeps.spec import SweepSpec

#: The Tune config key holding a pack's member trials.
PACK_KEY = "pack"
#: At most this many members (trials × seeds) in one pack.
MAX_MEMBERS = 1024


def member_trial_id(pack_trial_id: str, position: int) -> str:
    return f"{pack_trial_id}-{position:02d}"


def check_pack(spec: SweepSpec, size: int) -> None:
    """SpecError naming ``execution.pack`` when ``spec`` cannot run with packs of ``size``."""
    if size <= 1:
        return
    key = "execution.pack"
    if spec.search.algorithm != "grid":
        raise SpecError(spec.path, key, f"packs of {size} need search.algorithm grid for now "
                        f"(random and optuna run one trial per Ray trial: pack 1), got "
                        f"{spec.search.algorithm}")
    if spec.scheduler.kind != "fifo":
        raise SpecError(spec.path, key, f"packs of {size} need scheduler.kind fifo for now "
                        f"(asha runs one trial per Ray trial: pack 1), got {spec.scheduler.kind}")
    try:
        check_packable(spec.base)
    except ConfigError as err:
        raise SpecError(spec.path, key, str(err)) from None


def pack_size(spec: SweepSpec, requested: int | str, *, cpus: float, gpus: float) -> int:
    """Trials per pack: ``requested``, or for ``auto`` one pack per free CPU (GPU) slot."""
    if requested != "auto":
        return int(requested)
    try:
        check_pack(spec, 2)
    except SpecError:
        return 1  # auto never packs what cannot be packed
    if spec.resources.gpu > 0 and gpus > 0:
        slots = max(1, int(gpus // spec.resources.gpu))
    else:
        slots = max(1, int(cpus // max(spec.resources.cpu, 1e-9)))
    size = math.ceil(spec.trial_count() / slots)
    return max(1, min(size, MAX_MEMBERS // len(spec.seeds)))


def plan_packs(spec: SweepSpec, size: int) -> list[list[dict[str, Any]]]:
    """The packs of a grid sweep: its distinct grid points (× num_samples), in plan order."""
    points = [t.point for t in spec.grid_trials() for _ in range(spec.search.num_samples)]
    return [points[i:i + size] for i in range(0, len(points), size)]

"""Packs: several of the user's trials trained as one Ray Tune trial (``execution.pack``).

A user trial is one config over the spec's seeds, and it stays the unit of records, MLflow,
Parquet, ``best``, the report and the progress line. With ``pack: N > 1`` the driver groups the
sweep's trials, in plan order, into packs of N; one Tune trial trains one pack as a single
:class:`mixup_core.training.Pack` of N × seeds members, and reports every member trial's epochs.
The trial id of member j of the Tune trial ``T`` is ``T-jj`` (``abc12_00003-07``).

Grid and random search pack; random search draws its sampled keys up front from
``search.seed`` (:func:`plan_trials`), so a resumed sweep rebuilds the same packs.
``search.algorithm: optuna`` asks the study for a whole pack at once (TPE with a constant liar,
the study in ``optuna.journal`` in the sweep folder; sweeps.execution.tuner.PackSearcher).
``scheduler: asha`` judges each member trial at each rung inside its pack, against every result
recorded at that rung by any pack (:class:`sweeps.execution.scheduling.Rungs`, held by one recorder actor
on the driver's node); a cut trial is STOPPED and leaves its pack.

``pack: auto`` sizes packs so that every free CPU (or GPU) gets one pack (Optuna:
:data:`OPTUNA_ROUNDS` packs one after another), capped by :data:`MAX_MEMBERS` members per pack
and by memory: the packs running at once may hold :data:`MEMORY_SHARE` of the cluster's memory,
at :func:`mixup_core.training.closed_form.member_bytes` per member (2.2 MB on the default task), estimated
from the spec's base trial.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mixup_core.training.closed_form import member_bytes
from sweeps.spec import Dimension, SweepSpec
from sweeps.spec.plan import is_image_trial, unpacked_reason
from sweeps.store.records import TrialRecord

#: The Tune config key holding a pack's member trials.
PACK_KEY = "pack"
#: At most this many members (trials × seeds) in one pack.
MAX_MEMBERS = 1024
#: ``pack: auto`` on GPUs: members per pack of image trials where the memory probe
#: (:func:`probe_gpu_members`) could not run.
MAX_IMAGE_MEMBERS = 24
#: The memory probe: a pack of image trials may fill this share of its GPU's free memory.
GPU_MEMORY_SHARE = 0.8
#: ``pack: auto``: the packs that run at once may hold this share of the cluster's memory.
MEMORY_SHARE = 0.5
#: ``pack: auto`` with Optuna: each CPU (GPU) slot trains this many packs one after another, so
#: the later packs are asked for with the earlier ones' results known.
OPTUNA_ROUNDS = 4


def member_trial_id(pack_trial_id: str, position: int) -> str:
    return f"{pack_trial_id}-{position:02d}"


# ---------------------------------------------------------------------------- split packs

#: Reserved keys of a point in a split pack: the member trial it goes on with, and the Tune
#: trial (pack) whose state file holds that member's state.
MEMBER_KEY = "_member"
FROM_KEY = "_from"
#: How a member trial's error starts when its pack failed as a whole (its retries spent).
PACK_LOST = "pack lost"


def pack_members(pack_trial_id: str, points: Sequence[dict[str, Any]]
                 ) -> list[tuple[str, dict[str, Any], str | None]]:
    """(member trial id, its trial keys, the pack whose state it goes on from) of each point of
    a pack: ``T-jj`` and no source for a planned pack, the carried ones for a split pack."""
    return [(point.get(MEMBER_KEY) or member_trial_id(pack_trial_id, j),
             {k: v for k, v in point.items() if k not in (MEMBER_KEY, FROM_KEY)},
             point.get(FROM_KEY))
            for j, point in enumerate(points)]


def member_states(state: dict[str, Any], pack_trial_id: str, member_id: str,
                  seeds: int) -> list[dict[str, Any]]:
    """The states of member trial ``member_id``'s seeds in its pack's state file (member j
    trains the pack's members j·S … j·S+S-1; a split pack's file lists its member ids).

    Raises:
        KeyError, ValueError: The state holds no such member.
    """
    members = state["pack"]["members"]
    ids = state.get("ids") or [member_trial_id(pack_trial_id, j)
                               for j in range(len(members) // seeds)]
    j = ids.index(member_id)
    return list(members[j * seeds:(j + 1) * seeds])


def plan_split(records: Iterable[TrialRecord]) -> list[list[dict[str, Any]]]:
    """New packs for the member trials of packs that failed as a whole.

    A pack whose process or node died more often than ``execution.retries`` ends its open
    member trials as ERROR (``pack lost: ...``). Rather than leave them there, the driver runs
    them again in two halves, each a new pack that goes on from the failed pack's state file,
    on whatever nodes are healthy; a half that fails again is halved again, down to packs of
    one trial, whose failure is final (its pack held only that trial). Each member passes
    through at most log2(pack size) + 1 packs.

    Returns:
        The new packs (points carrying ``MEMBER_KEY`` and ``FROM_KEY``), in record order.
    """
    records = list(records)
    size = Counter(r.pack for r in records if r.pack is not None)
    lost: dict[str, list[TrialRecord]] = {}
    for record in records:
        if (record.pack is not None and record.status == "ERROR" and size[record.pack] > 1
                and (record.error or "").startswith(PACK_LOST)):
            lost.setdefault(record.pack, []).append(record)
    packs = []
    for pack_id, members in lost.items():
        half = math.ceil(len(members) / 2)
        for part in (members[:half], members[half:]):
            if part:
                packs.append([{**r.config, MEMBER_KEY: r.trial_id, FROM_KEY: pack_id}
                              for r in part])
    return packs


def pack_size(spec: SweepSpec, requested: int | str, *, cpus: float, gpus: float,
              memory: float = 0.0, gpu_members: int | None = None) -> int:
    """Trials per pack: ``requested``, or for ``auto`` one pack per free CPU (GPU) slot, within
    :data:`MAX_MEMBERS` members and, when ``memory`` (the cluster's bytes) is known, within
    :data:`MEMORY_SHARE` of it for the packs that run at once; image trials on GPUs within
    ``gpu_members`` (:func:`probe_gpu_members`; None: :data:`MAX_IMAGE_MEMBERS`)."""
    if requested != "auto":
        return int(requested)
    if unpacked_reason(spec, gpus=gpus) is not None:
        return 1
    images = is_image_trial(spec.base)
    if spec.resources.gpu > 0 and gpus > 0:
        slots = max(1, int(gpus // max(1.0, spec.resources.gpu)))  # a pack takes whole GPUs
    else:
        slots = max(1, int(cpus // max(spec.resources.cpu, 1e-9)))
    # Optuna learns from finished trials: its packs are sized for OPTUNA_ROUNDS per slot
    rounds = OPTUNA_ROUNDS if spec.search.algorithm == "optuna" else 1
    size = math.ceil(spec.trial_count() / (slots * rounds))
    members = MAX_MEMBERS
    if images:
        members = gpu_members if gpu_members is not None else MAX_IMAGE_MEMBERS
    if memory > 0 and not images:
        members = min(members, int(MEMORY_SHARE * memory / slots // member_bytes(spec.base)))
    return max(1, min(size, members // len(spec.seeds)))


def probe_gpu_members(spec: SweepSpec, *, timeout: float = 300.0) -> int:
    """Members of ``spec``'s image trials one GPU of the cluster holds: a Ray task on one GPU
    measures one training step of a group of one and of two members
    (mixup_core.training.autograd.measure_member_bytes) and the device's free memory
    (``torch.cuda.mem_get_info``); a pack may fill :data:`GPU_MEMORY_SHARE` of it.

    Raises:
        RuntimeError: The probe failed or did not finish within ``timeout`` seconds.
    """
    import ray

    from mixup_core.config import to_flat

    task = ray.remote(num_gpus=1, num_cpus=0, max_retries=0)(_probe)
    try:
        fixed, per_member, free = ray.get(task.remote(to_flat(spec.base)), timeout=timeout)
    except Exception as err:
        raise RuntimeError(f"the GPU memory probe failed ({type(err).__name__}: "
                           f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''})"
                           ) from None
    return max(1, int((GPU_MEMORY_SHARE * free - fixed) // per_member))


def _probe(flat: dict[str, Any]) -> tuple[int, int, int]:
    import torch

    from mixup_core.config import from_flat
    from mixup_core.training.autograd import measure_member_bytes

    config = from_flat({**flat, "device": "cuda"})
    fixed, per_member = measure_member_bytes(config, "cuda")
    free, _ = torch.cuda.mem_get_info()
    return fixed, per_member, int(free)


def sample_value(dim: Dimension, rng: np.random.Generator) -> Any:
    """One draw of a sampled dimension, with the semantics of the matching ``ray.tune`` domain
    (``randint`` excludes ``high``; ``quniform`` rounds to a multiple of ``q``)."""
    low, high = float(dim.low or 0.0), float(dim.high or 0.0)
    if dim.kind == "choice":
        return dim.values[int(rng.integers(len(dim.values)))]
    if dim.kind == "uniform":
        return float(rng.uniform(low, high))
    if dim.kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if dim.kind == "quniform":
        q = float(dim.q or 1.0)
        return float(np.round(rng.uniform(low, high) / q) * q)
    if dim.kind == "randint":
        return int(rng.integers(int(low), int(high)))
    raise ValueError(f"{dim.kind!r} is not a sampled dimension")


def plan_trials(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every trial of a grid or random sweep, in plan order: each distinct grid point
    ``num_samples`` times, the sampled keys drawn up front from ``search.seed``."""
    rng = np.random.default_rng(spec.search.seed)
    sampled = {k: d for k, d in spec.search_space.items() if d.kind != "grid"}
    points = []
    for trial in spec.grid_trials():
        for _ in range(spec.search.num_samples):
            points.append({**trial.point,
                           **{k: sample_value(d, rng) for k, d in sampled.items()}})
    return points


def plan_packs(spec: SweepSpec, size: int) -> list[list[dict[str, Any]]]:
    """The packs of a sweep: :func:`plan_trials` cut into runs of ``size``, in plan order."""
    points = plan_trials(spec)
    return [points[i:i + size] for i in range(0, len(points), size)]

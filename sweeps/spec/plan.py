"""``mixup-sweep plan``: what a sweep would run, printed before anything starts."""

from __future__ import annotations

from typing import Any

from mixup_core.catalog import MODEL_INPUTS
from mixup_core.config import TrialConfig, to_flat
from sweeps.spec.model import Dimension, GridTrial, SweepSpec


def _describe_dimension(dim: Dimension) -> str:
    if dim.kind in ("choice", "grid"):
        return f"{dim.kind} {list(dim.values)}"
    step = f" step {dim.q}" if dim.q is not None else ""
    closing = ")" if dim.kind == "randint" else "]"
    return f"{dim.kind} [{dim.low}, {dim.high}{closing}{step}"


#: Why ``pack: auto`` trains image trials one per Ray trial on CPUs (``pack: N`` packs them).
IMAGE_PACKS_ON_CPU = ("on a CPU a pack of image trials trains no faster than one trial after "
                      "another (benchmarks/packed_images.py: 0.44-1.39x per member-step), so "
                      "auto packs them on GPUs only; pack: N packs them anyway")
#: Searched keys that decide which members of a pack share one computation (a group): its
#: model, its data, its batches.
PACKING_KEYS = ("model.", "data.", "optim.batch_size", "device", "precision")


def unpacked_reason(spec: SweepSpec, *, gpus: float) -> str | None:
    """Why ``pack: auto`` trains ``spec``'s trials one per Ray trial (None: it packs them).

    Every trial can be a member of a pack; auto leaves two cases alone: a key of
    :data:`PACKING_KEYS` that is sampled (each trial its own model, data or batch shape, so
    members would share no computation) and image trials without GPUs (IMAGE_PACKS_ON_CPU)."""
    sampled = [k for k, dim in spec.search_space.items()
               if k.startswith(PACKING_KEYS) and dim.kind not in ("grid", "choice")]
    if sampled:
        return (f"{sampled[0]} is sampled and decides what a trial's computation is, so packed "
                "trials would share nothing; search it on a grid to pack")
    if is_image_trial(spec.base) and not (spec.resources.gpu > 0 and gpus > 0):
        return IMAGE_PACKS_ON_CPU
    return None


def is_image_trial(config: TrialConfig) -> bool:
    """Whether ``config`` trains in the autograd engine (an image model on image data)."""
    return MODEL_INPUTS.get(config.model.name) == "images" and config.data.is_image


def _assignments(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())


def format_plan(spec: SweepSpec) -> str:
    """A human-readable plan of the sweep: what would run, with nothing started.

    Args:
        spec: The sweep.

    Returns:
        Several lines: the spec's settings, the trial count (grid points, and distinct trials
        when some train alike), every grid trial, and the points merged into each.
    """
    defaults = to_flat(TrialConfig())
    changed = {key: value for key, value in to_flat(spec.base).items()
               if key != "seed" and value != defaults[key]}
    search, sched, count = spec.search, spec.scheduler, spec.trial_count()
    lines = [f"Sweep {spec.name} ({spec.path})"]
    if spec.description:
        lines.append(f"  {spec.description}")
    lines.append("Base trial (differences from the defaults):")
    lines += [f"  {key} = {value!r}" for key, value in changed.items()] or ["  (none)"]
    lines.append("Search space:")
    width = max((len(key) for key in spec.search_space), default=0)
    lines += [f"  {key:<{width}}  {_describe_dimension(dim)}"
              for key, dim in spec.search_space.items()] or ["  (none)"]
    lines.append(f"Search: {search.algorithm}, {search.num_samples} sample(s)"
                 f"{' per grid point' if search.algorithm != 'optuna' else ''}, "
                 f"{search.max_concurrent} at a time, seed {search.seed}")
    lines.append(f"Objective: {spec.objective.mode} {spec.objective.metric} (mean over seeds)")
    asha = (f" (grace_period {sched.grace_period}, max_t {sched.max_t}, "
            f"reduction_factor {sched.reduction_factor})") if sched.kind == "asha" else ""
    lines.append(f"Scheduler: {sched.kind}{asha}")
    unpackable = None
    if spec.pack == "auto":
        unpackable = unpacked_reason(spec, gpus=1.0 if spec.resources.gpu > 0 else 0.0)
    per = "pack" if spec.pack != 1 and unpackable is None else "trial"
    lines.append(f"Resources per {per}: {spec.resources.cpu} CPU, {spec.resources.gpu} GPU")
    if unpackable is not None:
        lines.append(f"Execution: pack auto -> one trial per Ray trial: {unpackable}")
    elif spec.pack != 1:
        lines.append(f"Execution: pack {spec.pack} (trials per Ray trial; auto: one pack per "
                     "free CPU/GPU slot)")
    lines.append(f"Seeds per trial: {', '.join(str(seed) for seed in spec.seeds)}")
    if spec.smoke:
        lines.append(f"Smoke overrides: {_assignments(spec.smoke)}")
    trials = spec.grid_trials()
    merged = [t for t in trials if t.merged]
    if merged:
        lines.append(f"Trials: {spec.grid_size()} trials, {count} distinct "
                     "(grid points that train exactly alike run once)")
    else:
        lines.append(f"Trials: {count}")
    if trials != [GridTrial({})]:
        repeat = f" (each {search.num_samples} times)" if search.num_samples > 1 else ""
        lines.append(f"Grid trials{repeat}:")
        width = len(str(len(trials)))
        lines += [f"  {i:>{width}}. {_assignments(t.point)}"
                  + (f"  (+{len(t.merged)} merged)" if t.merged else "")
                  for i, t in enumerate(trials, start=1)]
    for i, t in enumerate(trials, start=1):
        if t.merged:
            lines.append(f"Merged into trial {i} (they train exactly like it, "
                         "mixup_core.config.trains_as):")
            lines += [f"  {_assignments(point)}" for point in t.merged]
    return "\n".join(lines)

"""What ``list``, ``status`` and ``delete`` print (the work is the Sweep handle's, sweeps.sweep)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from sweeps.errors import UsageError
from sweeps.sweep import Sweep, SweepSummary, summaries


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _trials(s: SweepSummary) -> str:
    return f"{s.done}/{s.total if s.total is not None else '?'}"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def list_sweeps(args: argparse.Namespace) -> int:
    sweeps = summaries(args.storage)
    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in sweeps]))
        return 0
    if not sweeps:
        print(f"no sweeps in {args.storage} (start one with: mixup-sweep run SPEC)")
        return 0
    header = ["name", "status", "trials", "best", "created", "objective"]
    rows = [[s.name, s.status + (", read-only" if s.read_only else ""),
             _trials(s) + (f" ({s.errored} errored)" if s.errored else ""),
             "-" if s.best is None else f"{s.best:.4f}", _when(s.created),
             f"{s.metric} ({s.mode})"] for s in sweeps]
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    for s in sweeps:
        if s.error:
            print(f"{s.name}: unreadable: {s.error}", file=sys.stderr)
    return 0


def status(args: argparse.Namespace) -> int:
    st = Sweep.load(args.name, storage=args.storage).status()
    s = st.summary
    best = "-" if s.best is None else f"{s.best:.4f}"
    print(f"Sweep {s.name!r}: {s.status}{', read-only' if s.read_only else ''}, "
          f"{_trials(s)} trials ended"
          + (f" ({s.errored} errored)" if s.errored else "")
          + f"; best {s.metric} ({s.mode}) so far: {best}")
    share = st.epochs_done / st.epochs_total if st.epochs_total else 0.0
    eta = (f"ETA {_duration(st.eta_seconds)} at {st.rate:.1f} trial-epochs/s"
           if st.eta_seconds is not None and st.rate else "ETA - (no driver running)"
           if s.status != "running" else "ETA - (no epochs reported yet)")
    print(f"Progress: {st.epochs_done}/{st.epochs_total} trial-epochs ({share:.0%}); {eta}")
    if st.running:
        print(f"{'Running' if s.status == 'running' else 'Not ended'} ({len(st.running)}):")
        from sweeps.tracking import run_name

        for t in st.running:  # named as in the live view and MLflow (ERM: Mixup never mixes)
            print(f"  {t.trial_id}  epoch {t.epoch}/{t.epochs}  "
                  f"{run_name(t.settings, list(t.settings))}".rstrip())
    if s.status == "interrupted" and s.read_only:
        print(f"Its folder cannot be written: copy {args.storage}/{s.name} to a writable storage "
              f"folder, then: mixup-sweep resume {s.name} --storage THAT_FOLDER")
    elif s.status == "interrupted":
        where = f" --storage {args.storage}" if args.storage != "sweep_results" else ""
        if st.tune_saved:
            print(f"Continue it with: mixup-sweep resume {s.name}{where}")
        else:  # no dead end: the driver stopped before Ray Tune saved anything to go on from
            print("Ray Tune never saved its state (its driver stopped first); start it in its "
                  f"folder with: mixup-sweep resume {s.name}{where}")
    return 0


def delete(args: argparse.Namespace) -> int:
    sweep = Sweep.load(args.name, storage=args.storage)  # a bad name or no such sweep: ask nothing
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"delete {args.name}: pass --yes to delete without a terminal "
                             "to ask on")
        answer = input(f"Delete sweep {args.name!r} (its folder and its MLflow runs)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    deleted = sweep.delete()
    print(f"deleted {deleted.folder} and {deleted.runs} MLflow runs")
    return 0

"""What ``run``, ``resume``, ``best`` and ``ui`` print; the work itself lives in sweeps.runner and
sweeps.results (imported per command, so ``best`` never imports torch or Ray)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sweeps.errors import UsageError
from sweeps.layout import CONFIG_PREFIX, LAST_PREFIX, STD_SUFFIX, read_meta

if TYPE_CHECKING:
    from sweeps.runner import SweepOutcome

TOP_IN_SUMMARY = 5


def _tracking_uri(explicit: str | None) -> str:
    from sweeps.tracking import absolute_uri, default_tracking_uri

    return absolute_uri(explicit, Path.cwd()) if explicit else default_tracking_uri(Path.cwd())


def _positive(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{flag}: must be >= 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from sweeps.runner import start_run
    from sweeps.spec import load_spec

    spec = load_spec(args.spec)
    if args.address:
        from cluster.local import join_env

        join_env(args.address)
    outcome = start_run(
        spec, args.spec, storage=args.storage, name=args.name,
        tracking_uri=_tracking_uri(args.tracking_uri), address=args.address, smoke=args.smoke,
        num_samples=_positive(args.num_samples, "--num-samples"),
        max_concurrent=_positive(args.max_concurrent, "--max-concurrent"),
    )
    return _summarise(outcome, args.storage)


def resume(args: argparse.Namespace) -> int:
    from cluster.local import join_env
    from sweeps.runner import resume_run

    address = args.address or read_meta(args.storage, args.name).get("address")
    if address:
        join_env(address)
    return _summarise(resume_run(args.name, storage=args.storage, address=args.address),
                      args.storage)


def format_best(ranked: pd.DataFrame, *, metric: str, scope: str) -> str:
    """A plain-text table: rank, trial, value, epoch and the config keys that vary."""
    config_cols = [c for c in ranked.columns if c.startswith(CONFIG_PREFIX)]
    varying = [c for c in config_cols if ranked[c].astype(str).nunique() > 1] or config_cols[:0]
    header = ["#", "trial", f"{metric} ({scope})", "epoch", *[c[len(CONFIG_PREFIX):] for c in varying]]
    rows = []
    for i, (_, r) in enumerate(ranked.iterrows(), start=1):
        std = r.get(metric + STD_SUFFIX)
        value = f"{r['value']:.4f}" + (f" ± {std:.4f}" if std is not None and pd.notna(std) else "")
        rows.append([str(i), str(r["trial_id"]), value, str(int(r["epoch"])),
                     *[str(r[c]) for c in varying]])
    widths = [max(len(h), *(len(row[j]) for row in rows)) if rows else len(h)
              for j, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _summarise(outcome: SweepOutcome, storage: str) -> int:
    from sweeps.results import best_configs

    name = outcome.directory.name
    print(f"\nSweep {name!r}: {outcome.trials} trials ({outcome.errored} errored) "
          f"in {outcome.wall_seconds:.1f} s")
    meta = read_meta(storage, name)
    metric = meta["objective"]["metric"]
    for scope in ("best-epoch", "last"):
        try:
            ranked = best_configs(name, storage=storage, scope=scope, top=TOP_IN_SUMMARY)
        except UsageError as err:
            print(f"no ranking: {err}")
            break
        print(f"\nBest configs by {metric} ({scope}):")
        print(format_best(ranked, metric=metric, scope=scope))
    _print_marginals(name, storage, metric)
    print(f"\nRecords: {outcome.directory} (trials.parquet, epochs.parquet, records.jsonl)")
    print(f"MLflow:  {outcome.tracking_uri}  -> open the UI with: "
          f"mixup-sweep ui --tracking-uri {outcome.tracking_uri}")
    if not outcome.mlflow_complete:
        print(f"warning: MLflow at {outcome.tracking_uri} did not answer; {outcome.unsynced} "
              "trial(s) are complete in the records and Parquet but not yet in MLflow. Replay "
              f"them with: mixup-sweep sync {name} --storage {storage} --tracking-uri "
              f"{outcome.tracking_uri} (last error: "
              f"{outcome.last_tracking_error or 'none'})", file=sys.stderr)
    elif outcome.tracking_failures:
        print(f"note: {outcome.tracking_failures} MLflow call(s) failed during the sweep; "
              "every buffered result was delivered afterwards", file=sys.stderr)
    return 1 if outcome.errored and outcome.errored == outcome.trials else 0


def _print_marginals(name: str, storage: str, metric: str) -> None:
    from sweeps.results import load_tables
    from sweeps.tables import marginals

    trials, _ = load_tables(name, storage=storage)
    table = marginals(trials, f"{LAST_PREFIX}{metric}")
    if not table:
        return
    print(f"\nMean {metric} at the last epoch, by each searched key (over all other keys):")
    width = max(len(k) for k in table)
    for key, rows in table.items():
        cells = " | ".join(f"{v} -> {m:.3f} ({n})" for v, m, n in rows)
        print(f"  {key:<{width}}  {cells}")


def best(args: argparse.Namespace) -> int:
    from sweeps.results import best_configs
    from sweeps.tables import ranked_records

    top = _positive(args.top, "--top")
    ranked = best_configs(args.name, storage=args.storage, metric=args.metric, mode=args.mode,
                          scope=args.scope, top=top, source=args.source)
    if args.json:
        print(json.dumps(ranked_records(ranked)))
    else:
        metric = args.metric or read_meta(args.storage, args.name)["objective"]["metric"]
        print(format_best(ranked, metric=metric, scope=args.scope))
    return 0


def ui(args: argparse.Namespace) -> int:
    uri = _tracking_uri(args.tracking_uri)
    if uri.startswith("http"):
        print(f"The tracking server already serves the UI: {uri}")
        return 0
    print(f"MLflow UI for {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    from sweeps.tracking import server_command, server_env

    return subprocess.call(server_command(uri, host="127.0.0.1", port=args.port), env=server_env())

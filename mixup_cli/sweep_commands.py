"""What ``run``, ``resume`` and ``best`` print; the work itself is the driver's
(sweeps.execution.driver) and the Sweep handle's (sweeps.sweep), imported per command, so
``best`` never imports torch or Ray."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sweeps.errors import SweepInterrupted, UsageError
from sweeps.store import key_summary
from sweeps.store.layout import CONFIG_PREFIX, DEFAULT_STORAGE, STD_SUFFIX, read_meta
from sweeps.store.spread import format_spread, spread_note
from sweeps.store.tables import STANDS_FOR, TIE_RULE, is_selection_on_test, optimistic_warning
from sweeps.sweep import Sweep

if TYPE_CHECKING:
    from sweeps.execution.driver import SweepOutcome

TOP_IN_SUMMARY = 5


def _tracking_uri(explicit: str | None) -> str:
    from sweeps.tracking import resolve_tracking_uri

    return resolve_tracking_uri(explicit, Path.cwd())


def _positive(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{flag}: must be >= 1, got {value}")
    return value


def _quiet_unless(verbose: bool) -> None:
    """Ray's and MLflow's start-up messages only with --verbose (before either is imported)."""
    import os

    if verbose:
        os.environ["MIXUP_VERBOSE"] = "1"
    else:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


#: What a shell reports for a program ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _interrupted(args: argparse.Namespace, err: SweepInterrupted) -> int:
    """An interrupted sweep (Ctrl-C, SIGTERM) is one line and exit 130, never a ranking."""
    where = "" if args.storage == DEFAULT_STORAGE else f" --storage {args.storage}"
    print(f"mixup-sweep {args.command}: {err}; resume with: mixup-sweep resume {err.name}{where}",
          file=sys.stderr)
    return EXIT_INTERRUPTED


def run(args: argparse.Namespace) -> int:
    _quiet_unless(args.verbose)
    from sweeps.execution.driver import start_run
    from sweeps.spec import load_spec

    sets = parse_sets(args.assignments)
    spec = load_spec(args.spec, sets)
    if (warning := optimistic_warning(spec.objective.metric)) is not None:
        print(warning, file=sys.stderr)
    if args.address:
        from cluster.local import join_env

        join_env(args.address)
    try:
        outcome = start_run(
            spec, args.spec, storage=args.storage, name=args.name,
            tracking_uri=_tracking_uri(args.tracking_uri), address=args.address,
            smoke=args.smoke, num_samples=_positive(args.num_samples, "--num-samples"),
            max_concurrent=_positive(args.max_concurrent, "--max-concurrent"), pack=args.pack,
            allow_same_name=args.allow_same_name, sets=sets,
        )
    except SweepInterrupted as err:
        return _interrupted(args, err)
    return _summarise(outcome, report=not args.no_report)


def parse_sets(items: list[str]) -> dict[str, object]:
    """``run --set KEY=VALUE`` items as a dict, each VALUE as YAML reads it (``50``, ``1e-3``,
    ``[0, 1, 2]``, ``same``); the spec's own validation then checks each value."""
    from sweeps.spec import yaml_numbers

    sets: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.epochs=50")
        try:
            sets[key.strip()] = yaml_numbers.safe_load(text) if text.strip() else None
        except Exception as err:  # a YAML error in VALUE: one line naming the key
            raise UsageError(f"--set {key.strip()}: {text!r} is not a value "
                             f"({str(err).splitlines()[0]})") from None
    return sets


def resume(args: argparse.Namespace) -> int:
    _quiet_unless(args.verbose)
    from cluster.local import join_env
    from sweeps.execution.driver import resume_run

    address = args.address or read_meta(args.storage, args.name).get("address")
    if address:
        join_env(address)
    try:
        outcome = resume_run(args.name, storage=args.storage, address=args.address,
                             allow_changed_plugins=args.allow_changed_plugins)
    except SweepInterrupted as err:
        return _interrupted(args, err)
    return _summarise(outcome, report=not args.no_report)


def reported_metrics(metric: str, columns: list[str]) -> list[str]:
    """The test metrics shown beside a selection metric: its test counterpart first (for
    ``val/acc_rare``, ``test/acc_rare``), then rare-feature, common-feature and overall test
    accuracy, those the sweep reports."""
    wanted = ["test/" + metric.split("/", 1)[1]] if metric.startswith("val/") else []
    wanted += ["test/acc_rare", "test/acc_common", "test/acc"]
    out: list[str] = []
    for name in wanted:
        if name != metric and name in columns and name not in out:
            out.append(name)
    return out[:2]


def best_header(ranked: pd.DataFrame, *, metric: str, mode: str, scope: str,
                seeds: int) -> list[str]:
    """What the table is: where it chose, what it reports, the spread, and the ties."""
    where = ("each trial's best epoch by that metric" if scope == "best-epoch"
             else "each trial's last epoch")
    shown = reported_metrics(metric, list(ranked.columns))
    data = "validation" if metric.startswith("val/") else (
        "test" if is_selection_on_test(metric) else "training")
    lines = [f"Chosen on {metric} ({mode}, {data} data) at {where}"
             + (f"; reported: {', '.join(shown)} at that epoch." if shown else ".")]
    lines.append(f"Values: {spread_note(seeds)}.")
    ties = int(ranked["ties"].iloc[0]) if len(ranked) and "ties" in ranked else 0
    if ties > 1:
        lines.append(f"{ties} trials tie at {metric} = {ranked['value'].iloc[0]:.4f}; "
                     f"{TIE_RULE}.")
    return lines


def config_cell(key: str, value: object) -> str:
    """A config value in a table: a missing one (None, NaN, NA) is ``never`` for
    ``mixup.stop_epoch`` (Mixup is never switched off) and ``null`` for any other key; a float
    has 4 significant digits (a sampled α of 0.30000000000000004 prints ``0.3``; JSON and CSV
    keep every digit)."""
    if value is None or (not isinstance(value, (list, dict)) and bool(pd.isna(value))):
        return "never" if key == "mixup.stop_epoch" else "null"
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()  # numpy scalars print as the Python number they hold
    return key_summary.format_number(value)


def format_best(ranked: pd.DataFrame, *, metric: str, scope: str, seeds: int,
                mode: str = "max", searched: list[str] | None = None) -> str:
    """A plain-text table: rank, trial, the chosen value, the test values at the chosen epoch,
    epoch, every searched config key and any other that varies; a header says what was chosen
    on and what is shown."""
    config_cols = [c for c in ranked.columns if c.startswith(CONFIG_PREFIX)]
    shown_config = {c: pd.Series([config_cell(c[len(CONFIG_PREFIX):], v) for v in ranked[c]],
                                 index=ranked.index, dtype=object) for c in config_cols}
    always = [f"{CONFIG_PREFIX}{k}" for k in (searched or []) if f"{CONFIG_PREFIX}{k}" in ranked]
    varying = always + [c for c in config_cols
                        if c not in always and shown_config[c].nunique() > 1]
    shown = reported_metrics(metric, list(ranked.columns))
    merged = STANDS_FOR in ranked and bool((ranked[STANDS_FOR].fillna(1) > 1).any())
    header = ["#", "trial", f"{metric} ({scope})", *shown, "epoch",
              *[c[len(CONFIG_PREFIX):] for c in varying], *(["stands for"] if merged else [])]
    rows = []
    for i, (_, r) in enumerate(ranked.iterrows(), start=1):
        cells = [format_spread(r["value"], r.get(metric + STD_SUFFIX), seeds, digits=4,
                               ci=False, metric=metric)]
        cells += [format_spread(r.get(m), r.get(m + STD_SUFFIX), seeds, digits=4, metric=m)
                  for m in shown]
        stands = ([f"{int(r[STANDS_FOR])} grid points" if r[STANDS_FOR] > 1 else ""]
                  if merged else [])
        rows.append([str(i), str(r["trial_id"]), *cells, str(int(r["epoch"])),
                     *[shown_config[c].iloc[i - 1] for c in varying], *stands])
    widths = [max(len(h), *(len(row[j]) for row in rows)) if rows else len(h)
              for j, h in enumerate(header)]
    lines = best_header(ranked, metric=metric, mode=mode, scope=scope, seeds=seeds)
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _report(sweep: Sweep) -> None:
    """Builds the sweep's report and logs it to its MLflow parent run; a failure is a warning
    line, never a failed sweep."""
    from dashboards.report import build_report

    try:
        report = build_report(sweep)
    except Exception as err:
        print(f"warning: report not built ({type(err).__name__}: "
              f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}); "
              f"build it with: mixup-sweep report {sweep.name}", file=sys.stderr)
        return
    print(f"Report:  {report.html} (also on the sweep's MLflow parent run)")


def _summarise(outcome: SweepOutcome, *, report: bool = True) -> int:
    """The end of ``run``/``resume``, from the driver's handle: nothing is read back."""
    sweep = outcome.sweep
    name = sweep.name
    print(f"\nSweep {name!r}: {outcome.trials} trials ({outcome.errored} errored) "
          f"in {outcome.wall_seconds:.1f} s")
    metric, mode = sweep.objective
    for scope in ("best-epoch", "last"):
        try:
            ranked = sweep.best(scope=scope, top=TOP_IN_SUMMARY)
        except UsageError as err:
            print(f"no ranking: {err}")
            break
        print(f"\nBest configs by {metric} ({scope}):")
        print(format_best(ranked, metric=metric, scope=scope, seeds=len(sweep.seeds), mode=mode,
                          searched=sweep.searched_keys))
    _print_key_summary(sweep)
    print(f"\nRecords: {outcome.directory} (trials.parquet, epochs.parquet, records.jsonl)")
    if report and outcome.trials:
        _report(sweep)
    if outcome.tracking_uri.startswith(("http://", "https://")):  # a server: its UI is there
        print(f"MLflow:  {outcome.tracking_uri}  (open it in a browser)")
    else:
        default = sweep.storage.resolve() == Path(DEFAULT_STORAGE).resolve()
        where = "" if default else f" --storage {sweep.storage}"
        print(f"MLflow:  {outcome.tracking_uri}  -> open the UI on this sweep's runs, best "
              f"first: mixup-sweep ui {name}{where}")
    if not outcome.mlflow_complete:
        print(f"warning: MLflow at {outcome.tracking_uri} did not answer; {outcome.unsynced} "
              "trial(s) are complete in the records and Parquet but not yet in MLflow. Replay "
              f"them with: mixup-sweep sync {name} --storage {sweep.storage} --tracking-uri "
              f"{outcome.tracking_uri} (last error: "
              f"{outcome.last_tracking_error or 'none'})", file=sys.stderr)
    elif outcome.tracking_failures:
        print(f"note: {outcome.tracking_failures} MLflow call(s) failed during the sweep; "
              "every buffered result was delivered afterwards", file=sys.stderr)
    return 1 if outcome.errored and outcome.errored == outcome.trials else 0


def _print_key_summary(sweep: Sweep) -> None:
    """The end of ``run``: what ``best NAME --by all`` prints."""
    try:
        summaries = sweep.key_summary()
    except UsageError as err:
        print(f"no per-key summary: {err}")
        return
    if summaries.keys:
        print("\n" + format_key_summary(summaries))


def format_key_summary(summaries: key_summary.KeySummaries) -> str:
    """``best NAME --by KEY``: per level of each key, the mean of the metric at each trial's
    chosen epoch, its 95% interval and n (grid points, trials, seed runs), then one sentence
    read off them; numbers with 4 significant digits."""
    metric = summaries.metric
    lines = [f"Mean {metric} at each trial's chosen epoch, per level of each searched key "
             "(over all other keys); a sampled key in bins of equal counts on its scale.",
             f"{key_summary.INTERVAL_METHOD}.",
             "n: grid points (a merged trial counts once for each it stands for); trials: "
             f"distinct trials; seed runs: trials × {summaries.seeds} seed(s).",
             *key_summary.table_lines(summaries),
             f"Reading: {summaries.sentence()}"]
    return "\n".join(lines)


def _best_by(sweep: Sweep, args: argparse.Namespace) -> int:
    """``best NAME --by KEY``: the per-key summary instead of trials."""
    if args.where or args.pareto:
        raise UsageError("--by summarises every trial of the sweep; it does not combine with "
                         + ("--where" if args.where else "--pareto"))
    keys = None if "all" in args.by else list(args.by)
    summaries = sweep.key_summary(args.metric, keys)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(json.dumps({"metric": summaries.metric, "column": summaries.column,
                          "seeds": summaries.seeds, "interval": key_summary.INTERVAL_METHOD,
                          "sentence": summaries.sentence(), "levels": summaries.records()}))
    elif fmt == "csv":
        import csv

        rows = summaries.records()
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["key"],
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else json.dumps(v) if isinstance(v, list) else v
                             for k, v in row.items()})
    else:
        print(format_key_summary(summaries))
    return 0


def parse_where(items: list[str]) -> dict[str, object]:
    """``--where KEY=VALUE`` filters: VALUE as YAML reads it (``1``, ``0.5``, ``same``);
    ``null`` and ``never`` both mean None."""
    from sweeps.spec import yaml_numbers

    where: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where {item!r}: expected KEY=VALUE, e.g. mixup.alpha=1.0")
        value = None if text.strip() in ("never", "null", "None", "") else (
            yaml_numbers.safe_load(text))
        where[key.strip()] = value
    return where


def best(args: argparse.Namespace) -> int:
    from sweeps.store.tables import ranked_records

    top = _positive(args.top, "--top")
    sweep = Sweep.load(args.name, storage=args.storage)
    if args.by:
        return _best_by(sweep, args)
    if args.pareto:
        ranked = sweep.pareto(scope=args.scope, source=args.source, where=parse_where(args.where))
        if args.format == "table" and not args.json:
            listed = ", ".join(f"{m} ({mode})" for m, mode in sweep.objectives)
            print(f"Pareto front over {listed}: {len(ranked)} trials no other trial beats on "
                  "every objective (each at its chosen epoch).")
    else:
        ranked = sweep.best(metric=args.metric, mode=args.mode, scope=args.scope, top=top,
                            source=args.source, where=parse_where(args.where))
    metric = args.metric or sweep.objective[0]
    if (warning := optimistic_warning(metric)) is not None:
        print(warning, file=sys.stderr)
    seeds = len(sweep.seeds)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(json.dumps(ranked_records(ranked, seeds=seeds)))
    elif fmt == "csv":
        _print_csv(ranked_records(ranked, seeds=seeds))
    else:
        mode = args.mode or sweep.best_mode(metric)
        print(format_best(ranked, metric=metric, scope=args.scope, seeds=seeds, mode=mode,
                          searched=sweep.searched_keys))
    return 0


def _print_csv(records: list[dict[str, object]]) -> None:
    """One row per trial: rank, trial, status, epoch, value, ties, stands_for, seeds, the config
    keys and the metrics at the chosen epoch; a missing value is an empty cell."""
    import csv

    rows = []
    for rank, record in enumerate(records, start=1):
        row: dict[str, object] = {"rank": rank}
        row |= {k: record[k] for k in ("trial_id", "status", "epoch", "value", "ties",
                                       "stands_for", "seeds")}
        row |= {f"config/{k}": v for k, v in record["config"].items()}  # type: ignore[attr-defined]
        row |= dict(record["metrics"])  # type: ignore[call-overload]
        for name, (low, high) in record["ci95"].items():  # type: ignore[attr-defined]
            row |= {f"{name}_ci_low": low, f"{name}_ci_high": high}
        for name, (fewest, most) in record["seeds_reached"].items():  # type: ignore[attr-defined]
            row |= {f"{name}_seeds_at_least": fewest, f"{name}_seeds_at_most": most}
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})

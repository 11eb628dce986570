"""``mixup-sweep report`` on large random searches: seconds, seconds per trial and peak RSS.

    python benchmarks/report_scale.py [--trials 500 2000 10000] [--storage DIR] [--breakdown]

For each trial count, a finished sweep's folder is written without Ray (as
``tests/sweep_helpers.py::write_finished_sweep`` does it: the records through the record log,
``sweep.json`` with a spec that parses, then the Parquet tables built from the records): a
random search of short trials over ``mixup.alpha`` (loguniform), ``mixup.label_scheme``
(choice of six) and ``mixup.stop_epoch`` (quniform, 0 = ERM up to the budget = Mixup
throughout), each trial on the default config with ``EPOCHS`` logged epochs of every metric
the feature-noise task reports (means and ``_std`` over three seeds). Then, in a fresh process
per sweep, the report is built as ``mixup-sweep report NAME --no-mlflow`` builds it
(``dashboards.report.build_report(..., mlflow=False)``) and timed; the peak RSS is that
process's. Sweep folders are kept under ``--storage`` (default: a temporary folder) and
reused when they exist, so a baseline and a change can be timed on the same folders.

``--breakdown`` also prints the seconds of each step (loading, each figure, the table, the page).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SCHEMES = ["same", "independent", "power", "dominant", "constant", "threshold"]
BUDGET = 80
LOG_EVERY = 10
EPOCHS = tuple(range(LOG_EVERY, BUDGET + 1, LOG_EVERY))  # 8 logged epochs
SEEDS = (0, 1, 2)
OBJECTIVE = {"metric": "val/acc_rare", "mode": "max"}
SPEC = {
    "description": "Synthetic random search of short trials (benchmarks/report_scale.py).",
    "trial": {"optim.epochs": BUDGET, "log_every": LOG_EVERY},
    "search_space": {
        "mixup.alpha": {"kind": "loguniform", "low": 0.05, "high": 8.0},
        "mixup.label_scheme": {"kind": "choice", "values": SCHEMES},
        "mixup.stop_epoch": {"kind": "quniform", "low": 0, "high": BUDGET, "q": LOG_EVERY},
    },
    "search": {"algorithm": "random", "num_samples": 1, "max_concurrent": 2, "seed": 0},
    "objective": OBJECTIVE,
    "scheduler": {"kind": "fifo"},
    "resources": {"cpu": 1, "gpu": 0},
    "seeds": list(SEEDS),
}


def _metrics(rng: np.random.Generator, config: dict[str, Any], epoch: int) -> dict[str, float]:
    """One epoch's seed means and stds, shaped like the feature-noise task's."""
    alpha, stop = config["mixup.alpha"], config["mixup.stop_epoch"]
    mixing = stop != 0
    learned = mixing and epoch > 20 and stop > 30
    rare = (0.5 + 0.4 * min(alpha, 2.0) / 2.0) if learned else 0.5
    common = min(1.0, 0.6 + epoch / 200)
    means = {
        "train/loss": 1.0 / epoch, "train/acc": common, "val/loss": 1.0 / epoch + 0.1,
        "val/acc": 0.9 * common + 0.1 * rare, "val/acc_common": common, "val/acc_rare": rare,
        "test/loss": 1.0 / epoch + 0.1, "test/acc": 0.9 * common + 0.1 * rare,
        "test/acc_common": common, "test/acc_rare": rare,
        "features/common_alignment": 0.003 * epoch,
        "features/rare_alignment": 0.002 * epoch if learned else 0.001,
        "features/noise_memorization": 0.001 * epoch,
    }
    noise = rng.normal(0.0, 0.01, size=len(means))
    out: dict[str, float] = {"epoch": float(epoch)}
    for (key, mean), e in zip(means.items(), noise, strict=True):
        out[key] = float(mean + e)
        out[key + "_std"] = float(abs(e) + 0.005)
    out["mixup/active"] = float(mixing and epoch < stop)
    return out


def make_sweep(storage: Path, name: str, trials: int, seed: int = 0) -> Path:
    """Writes a finished random-search sweep of ``trials`` trials into ``storage/name``."""
    import yaml

    from mixup_core.config import TrialConfig, to_flat
    from sweeps.store.layout import write_meta
    from sweeps.store.parquet_io import write_tables
    from sweeps.store.records import RecordLog

    folder = storage / name
    rng = np.random.default_rng(seed)
    base = {**to_flat(TrialConfig()), "optim.epochs": BUDGET, "log_every": LOG_EVERY}
    log = RecordLog(folder)
    for i in range(trials):
        config = {**base,
                  "mixup.alpha": float(math.exp(rng.uniform(math.log(0.05), math.log(8.0)))),
                  "mixup.label_scheme": SCHEMES[int(rng.integers(len(SCHEMES)))],
                  "mixup.stop_epoch": int(round(rng.uniform(0, BUDGET) / LOG_EVERY) * LOG_EVERY)}
        trial_id = f"{i // 1000:05x}_{i:05d}"
        log.trial_started(trial_id, config)
        for epoch in EPOCHS:
            log.epoch(trial_id, epoch, _metrics(rng, config, epoch), node_id="node0",
                      compute_seconds=0.05)
        log.trial_finished(trial_id, "TERMINATED", None)
    log.close()
    spec = {"name": name, **SPEC}
    write_meta(folder, {
        "name": name, "spec_path": f"{name}.yaml", "spec_text": yaml.safe_dump(spec),
        "smoke": False, "tracking_uri": "sqlite:////nonexistent/mlflow.db",
        "parent_run_id": "0" * 32, "created": time.time(), "objective": OBJECTIVE,
        "objectives": [OBJECTIVE], "seeds": list(SEEDS), "trials_planned": trials})
    write_tables(folder, log, OBJECTIVE["metric"], OBJECTIVE["mode"])
    return folder


def _timing(inner: Any, times: dict[str, float], label: str) -> Any:
    """``inner``, adding the seconds of each call to ``times[label]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            times[label] = times.get(label, 0.0) + time.perf_counter() - start

    return wrapper


def _timed(module: Any, attr: str, times: dict[str, float], label: str) -> None:
    setattr(module, attr, _timing(getattr(module, attr), times, label))


def time_report(storage: Path, name: str, breakdown: bool) -> dict[str, Any]:
    """Builds the report as ``mixup-sweep report NAME --no-mlflow`` does; in this process."""
    started = time.perf_counter()
    import dashboards
    from dashboards import best_table, page, report

    imported = time.perf_counter() - started
    times: dict[str, float] = {}
    if breakdown:
        _timed(report, "report_data", times, "load (report_data)")
        report.FIGURES = tuple(_wrapped(make, times) for make in report.FIGURES)
        _timed(best_table, "best_configs", times, "best_table.best_configs")
        _timed(page, "render", times, "page.render")
        from matplotlib.figure import Figure

        _timed(Figure, "savefig", times, "Figure.savefig (PNG)")
    from sweeps import load_sweep

    start = time.perf_counter()
    paths = report.build_report(load_sweep(name, storage=storage), mlflow=False)
    seconds = time.perf_counter() - start
    figures = sorted(p.stem for p in paths.pngs)
    return {"seconds": seconds, "import_s": imported,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "figures": figures, "html_kb": paths.html.stat().st_size / 1024,
            "dashboards": str(Path(dashboards.__file__).parent), "breakdown": times}


def _wrapped(make: Any, times: dict[str, float]) -> Any:
    wrapper = _timing(make, times, f"{make.__module__.split('.')[-1]}.{make.__name__}")
    wrapper.__name__ = make.__name__
    wrapper.__module__ = make.__module__
    if make.__name__ == "parameter_importance":  # report.write_report tests `make is ...`
        from dashboards import fig_importance

        fig_importance.parameter_importance = wrapper
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--storage", type=Path, help="keep (and reuse) the sweep folders here")
    parser.add_argument("--breakdown", action="store_true", help="seconds of each step")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: time the report of this sweep
    args = parser.parse_args()
    if args.one:
        print(json.dumps(time_report(args.storage, args.one, args.breakdown)))
        return
    storage = args.storage or Path(tempfile.mkdtemp(prefix="report_scale_"))
    storage.mkdir(parents=True, exist_ok=True)
    print(f"storage: {storage}")
    print(f"{'trials':>7} {'report s':>9} {'ms/trial':>9} {'peak RSS MB':>12} {'import s':>9} "
          f"{'html kB':>8}  figures")
    for n in args.trials:
        name = f"random_{n}"
        if not (storage / name / "trials.parquet").is_file():
            start = time.perf_counter()
            make_sweep(storage, name, n)
            print(f"  (wrote {name} in {time.perf_counter() - start:.1f} s)", flush=True)
        cmd = [sys.executable, __file__, "--storage", str(storage), "--one", name]
        if args.breakdown:
            cmd.append("--breakdown")
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{n:>7} failed:\n{out.stderr[-3000:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>7} {result['seconds']:>9.2f} {1000 * result['seconds'] / n:>9.2f} "
              f"{result['peak_rss_mb']:>12.0f} {result['import_s']:>9.2f} "
              f"{result['html_kb']:>8.0f}  {len(result['figures'])} ({result['dashboards']})",
              flush=True)
        for label, seconds in sorted(result["breakdown"].items(), key=lambda kv: -kv[1]):
            print(f"{'':>9}{seconds:8.2f} s  {label}")


if __name__ == "__main__":
    main()

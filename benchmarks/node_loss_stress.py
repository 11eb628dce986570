"""Kills a worker node of a real local Ray cluster N times, at random moments, and checks that
every run lost nothing.

    python benchmarks/node_loss_stress.py --runs 10 [--pack 2] [--retries 0]

Each run is a 4-trial grid sweep (2 seeds, 600 epochs, a report every 20; with ``--pack 2``, 7
trials in 4 packs, ``--retries 0``: a killed pack is split at once) on a head with no
CPUs and two 1-CPU worker nodes, tracked by an MLflow server over HTTP. One worker node dies as a
machine dies (every process at once, ``cluster.local.kill_machine``) at a moment drawn at random:

* ``start``: while the first trials' actors are being created (failpoint in ``setup``);
* ``boundary``: while the next trial is handed to a reused actor (failpoint in ``reset_config``);
* ``mid-trial@E``: while a trial trains its epochs after E (failpoint in ``step``);
* ``random@S``: S seconds after the first report, whatever is happening then.

A run "lost nothing" when the driver exits 0, every planned trial is TERMINATED with every epoch
in its records, and every MLflow child run holds every epoch exactly once. The killed node is
replaced before the next run. Prints one line per run, then ``K/N runs lost nothing``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cluster import local

EPOCHS = list(range(20, 601, 20))
TRIAL = {"data": {"dim": 400, "n_train": 60, "n_test": 200}, "optim.epochs": 600, "log_every": 20}


#: The sweep's grid: 4 α values, and with packs also 2 switch-off epochs (7 trials: α = 0 never
#: mixes, so its two points train alike and are one trial; packs of 2 follow one another on
#: reused actors).
ALPHAS = [0.0, 0.5, 1.0, 2.0]
STOPS = [None, 100]


def _spec(folder: Path, name: str, pack: int, retries: int) -> Path:
    space: dict[str, object] = {"mixup.alpha": {"kind": "grid", "values": ALPHAS}}
    if pack > 1:
        space["mixup.stop_epoch"] = {"kind": "grid", "values": STOPS}
    spec = {"name": name, "trial": TRIAL, "seeds": [0, 1],
            "search": {"algorithm": "grid", "max_concurrent": 2},
            "search_space": space, "objective": {"metric": "test/acc_rare", "mode": "max"},
            "execution": {"pack": pack, "retries": retries}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _read_json(path: Path) -> dict | None:  # type: ignore[type-arg]
    return json.loads(path.read_text()) if path.exists() else None


def _check(state: local.ClusterState, folder: Path, name: str, code: int) -> str:
    """'' when the run lost nothing, else what was lost."""
    from mlflow.tracking import MlflowClient

    if code != 0:
        return f"driver exited {code}"
    trials = json.loads((folder / "res" / name / "sweep.json").read_text())["trials_planned"]
    events = [json.loads(line) for line in (folder / "res" / name / "records.jsonl").read_text()
              .splitlines()]
    ends = {e["trial_id"]: e["status"] for e in events if e["type"] == "end"}
    epochs: dict[str, set[int]] = {}
    for e in events:
        if e["type"] == "epoch":
            epochs.setdefault(e["trial_id"], set()).add(e["epoch"])
    if len(ends) != trials or set(ends.values()) != {"TERMINATED"}:
        return f"trial statuses {ends}"
    if any(sorted(v) != EPOCHS for v in epochs.values()) or len(epochs) != trials:
        return "epochs missing from the records"
    client = MlflowClient(str(state.tracking_uri))
    experiment = client.get_experiment_by_name(f"mixup-sweeps/{name}")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    if len(children) != trials:
        return f"{len(children)} MLflow child runs"
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "test/acc_rare")]
        if steps != EPOCHS:
            return f"MLflow steps of {child.info.run_name}: {len(steps)} (want {len(EPOCHS)})"
    return ""


def one_run(state: local.ClusterState, folder: Path, index: int, rng: random.Random, *,
            pack: int, retries: int) -> tuple[str, str]:
    name = f"stress-{index}"
    failpoints = folder / f"failpoints-{index}"
    failpoints.mkdir()
    kind = rng.choice(["start", "boundary", "mid-trial", "random"])
    moment, failpoint = kind, None
    if kind == "start":
        failpoint = "setup", {}
    elif kind == "boundary":
        failpoint = "reset", {}
    elif kind == "mid-trial":
        epoch = rng.randrange(20, 581, 20)
        failpoint, moment = ("step", {"min_epoch": epoch}), f"mid-trial@{epoch}"
    if failpoint:
        (failpoints / f"{failpoint[0]}.armed").write_text(json.dumps(failpoint[1]))
    env = {**os.environ, **state.env(), "MIXUP_FAILPOINTS": str(failpoints),
           "MIXUP_FINAL_SYNC_TIMEOUT": "30"}
    env.pop("MLFLOW_TRACKING_URI", None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "mixup_cli", "run", str(_spec(folder, name, pack, retries)),
         "--storage", "res",
         "--address", state.ray_address, "--tracking-uri", str(state.tracking_uri)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    records = folder / "res" / name / "records.jsonl"
    def alive() -> None:
        if driver.poll() is not None:
            raise RuntimeError(f"the driver exited with {driver.returncode} before the kill: "
                               f"{driver.communicate()[1].strip()[-300:]}")

    if failpoint:
        hit = _wait_for(lambda: alive() or _read_json(failpoints / f"{failpoint[0]}.hit"), 300,
                        "the failpoint")
        node = hit["node_id"]
    else:
        _wait_for(lambda: alive() or (records.exists() and '"type": "epoch"' in records.read_text()),
                  300, "the first report")
        delay = rng.uniform(0, 20)
        moment = f"random@{delay:.1f}s"
        time.sleep(delay)  # the random moment itself
        reports = [json.loads(line) for line in records.read_text().splitlines()
                   if '"type": "epoch"' in line]
        node = reports[-1]["node_id"]
    victim = local.worker_of(state, node)
    killed = local.kill_machine(victim)
    stdout, stderr = driver.communicate(timeout=600)
    problem = _check(state, folder, name, driver.returncode)
    split = "; split" if "go on from its state in" in stdout else ""
    if problem and driver.returncode != 0:
        problem += f" ({stderr.strip().splitlines()[-1] if stderr.strip() else ''})"
    local.replace_worker(state, victim)
    return f"{moment}, {victim.role} ({len(killed)} processes{split})", problem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seeds the choice of moments")
    parser.add_argument("--pack", type=int, default=1, help="trials per pack (execution.pack)")
    parser.add_argument("--retries", type=int, default=2,
                        help="execution.retries: 0 makes every killed pack split")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="node-loss-"))
    state = local.up(folder / "cluster", workers=2, cpus_per_node=1, head_cpus=0)
    good = 0
    try:
        for index in range(args.runs):
            started = time.monotonic()
            moment, problem = one_run(state, folder, index, rng, pack=args.pack,
                                      retries=args.retries)
            good += not problem
            print(f"run {index + 1:>2}: killed {moment}: "
                  f"{'lost nothing' if not problem else 'LOST: ' + problem} "
                  f"({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        local.down(folder / "cluster")
    print(f"{good}/{args.runs} runs lost nothing")
    return 0 if good == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())

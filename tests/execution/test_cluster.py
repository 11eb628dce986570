"""A real multi-node Ray cluster on loopback (head + 2 worker nodes) with an MLflow server over
HTTP, started by the project's own launcher; faults are injected by killing real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cluster import local
from sweeps.execution.failpoints import FAILPOINT_ENV
from sweeps.store.records import RecordLog
from tests.conftest import wait_until
from tests.sweep_helpers import (
    CLI,
    NO_REPORT,
    cli_env,
    kill_while_held,
    metric_steps,
    mixup_sweep,
    sweep_runs,
    write_spec,
)

pytestmark = pytest.mark.slow

LONG_TRIAL = {"data": {"dim": 400, "n_train": 60, "n_test": 200}, "optim.epochs": 1500,
              "log_every": 20}
ALL_EPOCHS = list(range(20, 1501, 20))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.ClusterState]:
    state_dir = tmp_path_factory.mktemp("cluster") / "state"
    state = local.up(state_dir, workers=2, cpus_per_node=1, head_cpus=0)
    try:
        yield state
    finally:
        local.down(state_dir)


def cluster_env(state: local.ClusterState, *, final_sync: float = 5) -> dict[str, str]:
    return {**cli_env(), **state.env(), "MIXUP_FINAL_SYNC_TIMEOUT": str(final_sync)}


def run_on(state: local.ClusterState, spec: Path, cwd: Path, *extra: str,
           timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", str(spec), "--storage", "res", NO_REPORT, "--address",
                           state.ray_address, "--tracking-uri", str(state.tracking_uri), *extra],
                          cwd=cwd, env=cluster_env(state), capture_output=True, text=True,
                          timeout=timeout)


def start_on(state: local.ClusterState, spec: Path, cwd: Path, *extra: str,
             final_sync: float = 5, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "run", str(spec), "--storage", "res", NO_REPORT, "--address",
                             state.ray_address, "--tracking-uri", str(state.tracking_uri),
                             *extra],
                            cwd=cwd, env={**cluster_env(state, final_sync=final_sync), **(env or {})},
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_epochs(records: Path, count: int, *, timeout: float = 180) -> None:
    wait_until(lambda: records.exists() and records.read_text().count('"type": "epoch"') >= count,
               timeout=timeout, what=f"{count} epoch reports in {records}")


def long_spec(folder: Path, name: str, alphas: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0),
              **sections) -> Path:
    return write_spec(folder, name, trial=LONG_TRIAL, search_space={
        "mixup.alpha": {"kind": "grid", "values": list(alphas)}},
        search={"algorithm": "grid", "max_concurrent": 2}, seeds=[0, 1], **sections)


def assert_complete_in_mlflow(uri: str, sweep: str, trials: int, *,
                              epochs: list[int] = ALL_EPOCHS) -> int:
    """Every trial's run has every epoch exactly once; returns the metric values checked."""
    _, children = sweep_runs(uri, sweep)
    assert len(children) == trials
    values = 0
    for child in children:
        assert metric_steps(uri, child.info.run_id, "test/acc_rare") == epochs, \
            child.info.run_name
        assert child.info.status == "FINISHED"
        values += len(epochs)
    return values


def record_fault(name: str, killed: str, records: Path, mlflow_values: int | None) -> None:
    """Appends what a fault test saw to test-artifacts/faults.jsonl (for the issue's notes)."""
    events = [json.loads(line) for line in records.read_text().splitlines()]
    reports = [e for e in events if e["type"] == "epoch"]
    unique = {(e["trial_id"], e["epoch"]) for e in reports}
    ends = [e for e in events if e["type"] == "end"]
    summary = {"test": name, "killed": killed, "trials_done": len(ends),
               "epoch_reports": len(reports), "epochs_recomputed": len(reports) - len(unique),
               "mlflow_values_checked": mlflow_values}
    folder = Path(__file__).resolve().parents[2] / "test-artifacts"
    folder.mkdir(exist_ok=True)
    with (folder / "faults.jsonl").open("a") as out:
        out.write(json.dumps(summary) + "\n")


def test_a_sweep_on_the_cluster_spreads_over_nodes_and_matches_a_local_run(cluster, tmp_path):
    spec = write_spec(tmp_path, "spread", search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}}, seeds=[0, 1],
        trial={**LONG_TRIAL, "optim.epochs": 300})
    # No race on timing: the first trial to reach epoch 20 is held on its node (each worker
    # offers one CPU) until another trial has reported from the other node, then released.
    failpoints = tmp_path / "failpoints"
    failpoints.mkdir()
    (failpoints / "step.armed").write_text(json.dumps({"min_epoch": 20}))
    driver = start_on(cluster, spec, tmp_path, env={FAILPOINT_ENV: str(failpoints)})
    hit = wait_for_json(failpoints / "step.hit", timeout=300)
    records = tmp_path / "res" / "spread" / "records.jsonl"

    def reported_elsewhere() -> bool:
        for line in records.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # the line the driver is writing right now
                continue
            if event["type"] == "epoch" and event.get("node_id") not in (None, hit["node_id"]):
                return True
        return False

    wait_until(reported_elsewhere, timeout=300, what="a report from the other worker node")
    (failpoints / "step.hit").unlink()  # release the held trial
    _, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 0, stderr
    _, children = sweep_runs(str(cluster.tracking_uri), "spread")
    nodes = {c.data.tags["mixup_sweeps.node_id"] for c in children}
    workers = {n["node_id"] for n in local.alive_nodes(cluster)
               if any(k.startswith("mixup_worker_") for k in n["resources"])}
    assert len(children) == 4 and nodes <= workers and len(nodes) == 2

    local_dir = tmp_path / "local"
    local_dir.mkdir()
    assert mixup_sweep("run", str(spec), "--storage", "res", cwd=local_dir).returncode == 0
    on_cluster = pd.read_parquet(tmp_path / "res" / "spread" / "trials.parquet")
    on_laptop = pd.read_parquet(local_dir / "res" / "spread" / "trials.parquet")
    columns = ["config/mixup.alpha", "best/test/acc_rare", "last/train/loss"]
    a = on_cluster.sort_values(columns[0])[columns].to_numpy().ravel().tolist()
    b = on_laptop.sort_values(columns[0])[columns].to_numpy().ravel().tolist()
    assert a == pytest.approx(b)


def test_a_restarted_tracking_server_loses_no_metric(cluster, tmp_path):
    alphas = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
    spec = long_spec(tmp_path, "outage", alphas)
    driver = start_on(cluster, spec, tmp_path, final_sync=60)
    records = tmp_path / "res" / "outage" / "records.jsonl"
    wait_for_epochs(records, 20)
    server = next(p for p in cluster.processes if p.role == "mlflow")
    port = int(str(cluster.tracking_uri).rsplit(":", 1)[1])
    local.kill_process(server, sig=signal.SIGKILL)
    down_at = records.read_text().count('"type": "epoch"')
    time.sleep(3)  # the outage itself: the server stays down this long, on purpose
    local.start_tracking_server(cluster, port=port)  # the same store, the same port
    up_at = records.read_text().count('"type": "epoch"')
    _, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 0, stderr
    assert up_at > down_at, "no result arrived while the server was down"
    assert "failed" in stderr and "answers again" in stderr, stderr
    assert "did not answer" not in stderr, stderr
    values = assert_complete_in_mlflow(str(cluster.tracking_uri), "outage", len(alphas))
    record_fault("tracking server killed, restarted 3 s later", f"mlflow server after "
                 f"{down_at} epoch reports", records, values)


def test_a_tracking_server_that_stays_down_leaves_everything_in_parquet_for_sync(cluster,
                                                                                 tmp_path):
    spec = long_spec(tmp_path, "down")
    driver = start_on(cluster, spec, tmp_path)
    wait_for_epochs(tmp_path / "res" / "down" / "records.jsonl", 10)
    server = next(p for p in cluster.processes if p.role == "mlflow")
    port = int(str(cluster.tracking_uri).rsplit(":", 1)[1])
    local.kill_process(server, sig=signal.SIGKILL)
    _, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 0, stderr
    assert "mixup-sweep sync down" in stderr
    epochs = pd.read_parquet(tmp_path / "res" / "down" / "epochs.parquet")
    assert len(epochs) == 4 * len(ALL_EPOCHS)

    local.start_tracking_server(cluster, port=port)
    out = mixup_sweep("sync", "down", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    values = assert_complete_in_mlflow(str(cluster.tracking_uri), "down", 4)
    record_fault("tracking server killed for good, then sync", "mlflow server after 10 epoch "
                 "reports", tmp_path / "res" / "down" / "records.jsonl", values)


def test_a_killed_driver_resumes_on_the_cluster(cluster, tmp_path):
    spec = long_spec(tmp_path, "driverless", execution={"pack": 1})  # one trial per Ray trial
    [hit] = kill_while_held(lambda env: start_on(cluster, spec, tmp_path, env=env),
                            tmp_path / "failpoints", at_epochs=(400,), timeout=300)
    held = RecordLog(tmp_path / "res" / "driverless").trials[hit["trial_id"]]
    assert held.status == "RUNNING" and held.last_epoch >= 400, (held.status, held.last_epoch)
    out = subprocess.run([*CLI, "resume", "driverless", "--storage", "res", NO_REPORT],
                         cwd=tmp_path,
                         env=cluster_env(cluster), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    records = RecordLog(tmp_path / "res" / "driverless").trials
    assert len(records) == 4 and all(r.status == "TERMINATED" for r in records.values())
    assert all(sorted(r.epochs) == ALL_EPOCHS for r in records.values())
    values = assert_complete_in_mlflow(str(cluster.tracking_uri), "driverless", 4)
    record_fault("driver killed, then resume", "driver process group while a trial held at epoch "
                 f"{hit['epoch']}",
                 tmp_path / "res" / "driverless" / "records.jsonl", values)


#: Where each fault is injected: the failpoint (sweeps.execution.failpoints) that holds one trial process
#: there until the test has killed its node.
MOMENTS = {
    "mid-trial": ("step", {"min_epoch": 300}),  # a trial with checkpoints, training
    "trial-boundary": ("reset", {}),  # the next trial being handed to a reused actor
    "first-start": ("setup", {}),  # the first trials' actors being created
    "mid-pack": ("step", {"min_epoch": 300}),  # a pack of two trials (--pack 2), training
    # the same pack with no retries left: it is split, its trials go on in two packs of one
    "mid-pack-no-retries": ("step", {"min_epoch": 300}),
    # a pack of two small_cnn trials (the autograd engine), training on real digits
    "mid-image-pack": ("step", {"min_epoch": 3}),
}
NODE_LOSS_TRIAL = {**LONG_TRIAL, "optim.epochs": 600}
NODE_LOSS_EPOCHS = list(range(20, 601, 20))
IMAGE_TRIAL = {"data": {"name": "digits", "view": "rare_subclass", "rho": 0.2, "max_train": 300,
                        "max_test": 100, "augment": True},
               "model": {"name": "small_cnn", "channels": 8}, "precision": "float32",
               "optim": {"epochs": 6, "batch_size": 64, "lr": 0.1, "momentum": 0.9,
                         "weight_decay": 5.0e-4}, "log_every": 1}
IMAGE_EPOCHS = list(range(1, 7))


def assert_resumed_like_uninterrupted(spec: Path, records: dict, held: list[str]) -> None:
    """The held trials, killed with their node and resumed elsewhere from their state file,
    recorded what the same configs record trained in one go in this process (float32)."""
    from mixup_core.config import from_flat, to_flat
    from mixup_core.training import Pack
    from sweeps.execution.seed_group import aggregate
    from sweeps.spec import load_spec

    loaded = load_spec(spec)
    base = to_flat(loaded.base)
    for trial_id in held:
        config = from_flat({**base, **records[trial_id].config})
        logged: dict[int, list] = {}

        def log(member, metrics, logged=logged):
            logged.setdefault(member.epoch, []).append(metrics)

        Pack([config.replace(seed=s) for s in loaded.seeds]).run(log)
        assert sorted(logged) == sorted(records[trial_id].epochs)
        for epoch, per_seed in logged.items():
            want, got = aggregate(per_seed), records[trial_id].epochs[epoch]
            for key in ("train/loss", "val/acc", "test/acc", "test/acc_rare"):
                assert got[key] == pytest.approx(want[key], abs=1e-4), (trial_id, epoch, key)


def wait_for_json(path: Path, *, timeout: float) -> dict:
    return wait_until(lambda: path.exists() and json.loads(path.read_text()), timeout=timeout,
                      what=f"{path.name} appearing")


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_worker_node_that_dies_loses_no_trial(cluster, tmp_path, moment):
    failpoint, condition = MOMENTS[moment]
    failpoints = tmp_path / "failpoints"
    failpoints.mkdir()
    (failpoints / f"{failpoint}.armed").write_text(json.dumps(condition))
    name = f"nodeloss-{moment}"
    split = moment == "mid-pack-no-retries"
    image = moment == "mid-image-pack"
    epochs = IMAGE_EPOCHS if image else NODE_LOSS_EPOCHS
    spec = write_spec(tmp_path, name, trial=IMAGE_TRIAL if image else NODE_LOSS_TRIAL,
                      search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}},
        search={"algorithm": "grid", "max_concurrent": 2}, seeds=[0, 1],
        execution={"retries": 0 if split else 2})
    records_path = tmp_path / "res" / name / "records.jsonl"
    packed = moment.startswith("mid-pack") or image
    driver = start_on(cluster, spec, tmp_path, "--pack", "2" if packed else "1",
                      env={FAILPOINT_ENV: str(failpoints)})
    hit = wait_for_json(failpoints / f"{failpoint}.hit", timeout=300)
    victim = local.worker_of(cluster, hit["node_id"])
    killed_at = time.time()
    killed = local.kill_machine(victim)
    stdout, stderr = driver.communicate(timeout=500)
    assert driver.returncode == 0, stderr
    assert "did not complete" not in stdout + stderr, stdout + stderr
    # a lost node is one note line on a non-verbose driver, never Ray's traceback
    assert "Traceback" not in stderr, stderr
    notes = [line for line in stderr.splitlines() if line.startswith("note: Ray trial")]
    if split:  # no retry: the pack is split instead
        assert not notes and "note: 2 trial(s) of a pack that failed 1 time(s)" in stdout, stdout
    else:  # a trial that had started (an actor still starting is re-placed by Ray silently)
        assert len(notes) == (1 if moment.startswith("mid-") else len(notes)) <= 1, stderr
        assert all(note.startswith(f"note: Ray trial {hit['trial_id']} failed (") and
                   note.endswith("retried from its state file (failure 1; --verbose shows "
                                 "Ray's traceback)") for note in notes), stderr

    events = [json.loads(line) for line in records_path.read_text().splitlines()]
    records = RecordLog(tmp_path / "res" / name).trials
    assert len(records) == 4 and all(r.status == "TERMINATED" for r in records.values()), \
        {r.trial_id: (r.status, r.error) for r in records.values()}
    assert all(sorted(r.epochs) == epochs for r in records.values())
    # the held Tune trial: one trial, or a pack whose member trials are "<pack id>-jj"
    held = [t for t in records if t == hit["trial_id"] or t.startswith(hit["trial_id"] + "-")]
    assert len(held) == (2 if packed else 1) and (not packed or all(
        (records[t].pack == hit["trial_id"]) != split for t in held))
    for trial_id in held:
        reports = [e for e in events if e["type"] == "epoch" and e["trial_id"] == trial_id]
        after = [e for e in reports if e["time"] > killed_at]
        # a trial whose new actor is held in setup may be handed to a free actor (reuse_actors)
        # of another node and finish there before the kill: it went on elsewhere all the same
        elsewhere = [e for e in reports if e["node_id"] != hit["node_id"]]
        assert elsewhere and all(e["node_id"] != hit["node_id"] for e in after), \
            f"the held trial {trial_id} did not go on on another node"
        if moment.startswith("mid-"):  # from its state file, not from scratch
            first = epochs[0]
            assert after[0]["epoch"] > first and [e["epoch"] for e in reports].count(first) == 1
    if image:
        assert_resumed_like_uninterrupted(spec, records, held)
    values = assert_complete_in_mlflow(str(cluster.tracking_uri), name, 4, epochs=epochs)
    record_fault(f"worker node killed {moment}", f"{victim.role}: {len(killed)} processes "
                 f"(SIGKILL), holding trial {hit['trial_id']} at epoch {hit['epoch']} in "
                 f"{failpoint}", records_path, values)
    local.replace_worker(cluster, victim)  # leave the cluster whole for what follows


def test_cluster_down_stops_exactly_the_processes_it_started(tmp_path):
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        state = local.up(tmp_path / "state", workers=1, tracking=False)
        groups = [p.pid for p in state.processes]
        assert len(local.alive_nodes(state)) == 2
        stopped = local.down(tmp_path / "state")
        assert len(stopped) == 2
        for pgid in groups:
            assert subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).stdout == b""
        assert bystander.poll() is None
    finally:
        bystander.kill()


def test_a_plugin_reaches_worker_nodes_that_do_not_have_it(cluster, tmp_path):
    """The example plugin (a local file the workers' Python cannot import) is shipped by Ray's
    runtime environment: its sweep trains on the worker nodes, packed, with its scheme, data set
    and metric, and every trial records the plugin's version."""
    import shutil
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "plugins"
    shutil.copytree(example, tmp_path / "plugins")
    nowhere = subprocess.run([sys.executable, "-c", "import mixup_ext"], cwd=tmp_path,
                             capture_output=True, text=True, env=cluster_env(cluster))
    assert nowhere.returncode != 0 and "No module named 'mixup_ext'" in nowhere.stderr
    out = run_on(cluster, tmp_path / "plugins" / "spec.yaml", tmp_path)
    assert out.returncode == 0, out.stderr
    records = RecordLog(tmp_path / "res" / "plugin_example").trials
    assert len(records) == 3 and all(r.status == "TERMINATED" for r in records.values())
    roles = {local.worker_of(cluster, r.node_id).role for r in records.values()}
    assert roles and all(role.startswith("worker") for role in roles), roles  # the head: 0 CPUs
    for record in records.values():
        assert all("val/brier" in m for m in record.epochs.values())
        assert [p["name"] for p in record.provenance["plugins"]] == ["mixup_ext"]
    assert "sigmoid" in {r.config["mixup.label_scheme"] for r in records.values()}

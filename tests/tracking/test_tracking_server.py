"""The shared tracking server (`mixup-sweep tracking up|down|add-user`): MLflow with its
basic-auth app on a real PostgreSQL, two users' sweeps logging at once, refusals, and a `down`
that stops exactly what its `up` started."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster import tracking_server
from cluster.local import free_port
from tests.sweep_helpers import CLI, NO_REPORT, cli_env, metric_steps, sweep_runs, write_spec

SPACE = {"mixup.alpha": {"kind": "grid", "values": [0.5, 1.0]},
         "mixup.label_scheme": {"kind": "grid", "values": ["same", "independent"]}}


def tracking(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "tracking", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=cli_env(), input=stdin)


def user_env(user: str, password: str) -> dict[str, str]:
    return {**cli_env(), "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password,
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def request(uri: str, path: str, auth: tuple[str, str] | None = None) -> tuple[int, Any]:
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(uri + path, headers=headers),
                                    timeout=10) as answer:
            body = answer.read().decode()
            return answer.status, json.loads(body) if body.startswith("{") else body
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket LISTENing on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


class Server:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.dir = folder / ".mixup-tracking"
        self.port, self.db_port = free_port(), free_port()

    def up(self) -> subprocess.CompletedProcess[str]:
        return tracking("up", "--dir", str(self.dir), "--port", str(self.port),
                        "--db-port", str(self.db_port), cwd=self.folder)

    @property
    def state(self) -> tracking_server.TrackingState:
        return tracking_server.TrackingState.load(self.dir)

    @property
    def uri(self) -> str:
        return self.state.uri

    def admin(self) -> tuple[str, str]:
        creds = tracking_server.admin_credentials(self.dir)
        return creds["MLFLOW_TRACKING_USERNAME"], creds["MLFLOW_TRACKING_PASSWORD"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = Server(tmp_path_factory.mktemp("tracking"))
    out = started.up()
    assert out.returncode == 0, out.stderr
    assert started.uri in out.stdout
    yield started
    if (started.dir / tracking_server.STATE_FILE).is_file():
        tracking("down", "--drop", "--dir", str(started.dir), cwd=started.folder)


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    """alice (password generated and printed once) and bob (password given on stdin)."""
    out = tracking("add-user", "alice", "--dir", str(server.dir), cwd=server.folder)
    assert out.returncode == 0, out.stderr
    alice = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("password:"))
    bob = "bob-chose-this-password"
    out = tracking("add-user", "bob", "--dir", str(server.dir), "--password-stdin",
                   cwd=server.folder, stdin=bob + "\n")
    assert out.returncode == 0, out.stderr
    assert bob not in out.stdout
    again = tracking("add-user", "bob", "--dir", str(server.dir), "--password-stdin",
                     cwd=server.folder, stdin="another-password-1\n")
    assert again.returncode == 2 and "HTTP" in again.stderr, again.stderr
    return {"alice": alice, "bob": bob}


@pytest.fixture(scope="module")
def two_sweeps(server: Server, users: dict[str, str]) -> dict[str, Any]:
    """alice's and bob's sweeps (4 trials each, packed), started together and logging at once."""
    drivers = {}
    for user in users:
        folder = server.folder / user
        folder.mkdir()
        spec = write_spec(folder, f"{user}-sweep", search_space=SPACE)
        drivers[user] = (folder, subprocess.Popen(
            [*CLI, "run", str(spec), "--tracking-uri", server.uri, "--storage", "res", NO_REPORT],
            cwd=folder, env=user_env(user, users[user]), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outcomes = {}
    for user, (folder, driver) in drivers.items():
        _, stderr = driver.communicate(timeout=300)
        assert driver.returncode == 0, stderr[-2000:]
        outcomes[user] = folder
    return outcomes


def test_up_binds_loopback_keeps_secrets_private_and_is_rerunnable(server: Server) -> None:
    state = server.state
    assert listening_addresses(state.port) == {"0100007F"}  # 127.0.0.1 only
    assert listening_addresses(state.db_port) == {"0100007F"}
    for secret in ("admin.env", "db_password", "flask_secret", "pgpass", "basic_auth.ini"):
        assert (server.dir / secret).stat().st_mode & 0o777 == 0o600, secret
    again = server.up()
    assert again.returncode == 0, again.stderr
    assert (server.state.mlflow_pid, server.state.postmaster_pid) == (
        state.mlflow_pid, state.postmaster_pid)
    status = tracking("status", "--dir", str(server.dir), cwd=server.folder)
    assert status.returncode == 0 and status.stdout.count("running") == 2, status.stdout


def test_requests_without_valid_credentials_are_refused(server: Server, users: dict[str, str],
                                                        tmp_path: Path) -> None:
    search = "/api/2.0/mlflow/experiments/search?max_results=5"
    assert request(server.uri, search)[0] == 401
    assert request(server.uri, search, ("alice", "not-her-password"))[0] == 401
    assert request(server.uri, search, ("mallory", users["alice"]))[0] == 401
    assert request(server.uri, search, ("alice", users["alice"]))[0] == 200
    spec = write_spec(tmp_path, "anonymous", search_space=SPACE)
    out = subprocess.run([*CLI, "run", str(spec), "--tracking-uri", server.uri, "--storage", "res",
                          NO_REPORT], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=cli_env())
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "MLFLOW_TRACKING_USERNAME" in out.stderr
    assert not (tmp_path / "res" / "anonymous").exists()


def test_two_users_sweeping_at_once_lose_nothing(server: Server, users: dict[str, str],
                                                 two_sweeps: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    spans = []
    for user, folder in two_sweeps.items():
        os.environ.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=users[user])
        try:
            parent, children = sweep_runs(server.uri, f"{user}-sweep")
            records = [json.loads(line) for line in
                       (folder / "res" / f"{user}-sweep" / "records.jsonl").read_text().splitlines()]
            epochs: dict[str, list[int]] = {}
            for record in records:
                if record["type"] == "epoch":
                    epochs.setdefault(record["trial_id"], []).append(record["epoch"])
            assert len(children) == len(epochs) == 4
            for child in children:
                trial = child.data.tags["mixup_sweeps.trial_id"]
                assert child.info.status == "FINISHED"
                assert metric_steps(server.uri, child.info.run_id, "val/acc_rare") == epochs[trial]
            assert parent.info.status == "FINISHED"
            spans.append((parent.info.start_time, MlflowClient(server.uri).get_run(
                parent.info.run_id).info.end_time))
        finally:
            os.environ.pop("MLFLOW_TRACKING_USERNAME")
            os.environ.pop("MLFLOW_TRACKING_PASSWORD")
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a, "the two sweeps did not log at the same time"
    # Each owns its experiment (MANAGE); the other has no grant, so default READ applies.
    for owner, other in (("alice", "bob"), ("bob", "alice")):
        status, experiment = request(server.uri, "/api/2.0/mlflow/experiments/get-by-name?"
                                     f"experiment_name=mixup-sweeps/{owner}-sweep", server.admin())
        assert status == 200
        ident = experiment["experiment"]["experiment_id"]
        path = ("/api/3.0/mlflow/users/permissions/get?resource_type=experiment&"
                f"resource_id={ident}&username=")
        for user, expected in ((owner, "MANAGE"), (other, "READ")):
            status, effective = request(server.uri, path + user, server.admin())
            assert status == 200 and effective["permission"] == expected, (user, effective)


def test_a_user_cannot_write_to_another_users_experiment(server: Server, users: dict[str, str],
                                                          two_sweeps: dict[str, Any]) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    os.environ.update(MLFLOW_TRACKING_USERNAME="bob", MLFLOW_TRACKING_PASSWORD=users["bob"],
                      MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    try:
        client = MlflowClient(server.uri)
        experiment = client.get_experiment_by_name("mixup-sweeps/alice-sweep")  # reading: allowed
        assert experiment is not None
        run = client.search_runs([experiment.experiment_id], max_results=1)[0]
        for write in (lambda: client.create_run(experiment.experiment_id),
                      lambda: client.log_metric(run.info.run_id, "val/acc_rare", 1.0, step=10**6),
                      lambda: client.set_tag(run.info.run_id, "mixup_sweeps.status", "ERROR"),
                      lambda: client.delete_experiment(experiment.experiment_id)):
            with pytest.raises(MlflowException, match="403"):
                write()
        assert client.get_run(run.info.run_id).data.metrics == run.data.metrics
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
            os.environ.pop(key)
    # bob's sweep under alice's name: one line, exit 2, before anything runs
    folder = server.folder / "bob-again"
    folder.mkdir()
    spec = write_spec(folder, "alice-sweep", search_space=SPACE)
    command = [*CLI, "run", str(spec), "--tracking-uri", server.uri, "--storage", "res", NO_REPORT]
    out = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120,
                         env=user_env("bob", users["bob"]))
    assert out.returncode == 2, out.stderr  # a sweep of this name from another folder is there
    assert "another storage folder" in out.stderr and out.stderr.strip().count("\n") == 0
    out = subprocess.run([*command, "--allow-same-name"], cwd=folder, capture_output=True,
                         text=True, timeout=120, env=user_env("bob", users["bob"]))
    assert out.returncode == 2, out.stderr  # told to log beside it: alice's experiment refuses
    assert "HTTP 403" in out.stderr and "'bob'" in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_down_stops_exactly_what_up_started_and_up_restarts_on_the_same_data(
        server: Server, users: dict[str, str], two_sweeps: dict[str, Any],
        tmp_path: Path) -> None:
    other = Server(tmp_path)  # a second server beside it: down must leave it running
    assert other.up().returncode == 0
    other_home = Path(other.state.pg_home)
    try:
        first = server.state
        out = tracking("down", "--dir", str(server.dir), cwd=server.folder)
        assert out.returncode == 0, out.stderr
        assert f"pid {first.mlflow_pid}" in out.stdout and f"pid {first.postmaster_pid}" in out.stdout
        assert first.mlflow_pid is not None and first.postmaster_pid is not None
        assert tracking_server.exited(first.mlflow_pid)
        assert tracking_server.exited(first.postmaster_pid)
        assert tracking_server.port_free("127.0.0.1", first.port)
        assert request(other.uri, "/health")[0] == 200
        assert other.state.postmaster_pid is not None
        assert not tracking_server.exited(other.state.postmaster_pid)
        assert tracking("status", "--dir", str(server.dir), cwd=server.folder).returncode == 1

        assert server.up().returncode == 0
        assert server.state.mlflow_pid != first.mlflow_pid
        search = "/api/2.0/mlflow/experiments/search?max_results=5"
        assert request(server.uri, search)[0] == 401  # still refused without credentials
        assert request(server.uri, search, ("alice", users["alice"]))[0] == 200  # users kept
        os.environ.update(MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD=users["alice"])
        try:
            _, children = sweep_runs(server.uri, "alice-sweep")
        finally:
            os.environ.pop("MLFLOW_TRACKING_USERNAME")
            os.environ.pop("MLFLOW_TRACKING_PASSWORD")
        assert len(children) == 4
    finally:
        dropped = tracking("down", "--drop", "--dir", str(other.dir), cwd=tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    assert not other.dir.exists() and not other_home.exists()


def test_bad_input_is_one_line_and_exit_2(server: Server, tmp_path: Path) -> None:
    taken = tracking("up", "--dir", str(tmp_path / "t"), "--port", str(server.state.port),
                     "--db-port", str(free_port()), cwd=tmp_path)
    assert taken.returncode == 2 and f"--port {server.state.port}: already in use" in taken.stderr
    bad = tracking("add-user", "../alice", "--dir", str(server.dir), cwd=tmp_path)
    assert bad.returncode == 2 and "user name" in bad.stderr
    missing = tracking("status", "--dir", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 2 and "tracking up" in missing.stderr

"""A shared MLflow tracking server for a lab: MLflow on PostgreSQL, with MLflow's basic-auth app.

``mixup-sweep tracking up`` brings up two processes and records both in ``<dir>/tracking.json``:

- a private PostgreSQL cluster (Debian's ``postgresql``; installed with apt-get when it is
  missing and we are root), listening on 127.0.0.1 only, password (SCRAM) authentication, with
  two databases: ``mlflow`` (runs, metrics, params) and ``mlflow_auth`` (users, permissions);
- ``mlflow server --app-name basic-auth`` on ``--host`` (127.0.0.1 unless told otherwise),
  serving artifacts from ``<dir>/artifacts``. Every request needs a user name and password;
  a new user may read every experiment and write only those it created or was granted
  (``default_permission = READ``).

``tracking down`` stops exactly those two processes (the MLflow server's process group, and the
cluster by ``pg_ctl stop`` on its own data directory); ``up`` again restarts them on the same
data, so runs and users survive. ``down --drop`` also deletes the data.

Secrets are made once, in files that are 0600 from their creation: the database role's password
(``pgpass``, read by libpq through ``PGPASSFILE``, so no password is on a command line), the
admin's credentials (``admin.env``), the auth app's config (``basic_auth.ini``) and Flask's
session key. PostgreSQL refuses to run as root, so as root the cluster runs as Debian's
``postgres`` user with its data under ``/var/lib/postgresql/mixup-sweeps/<id>``; otherwise as
the caller, under ``<dir>/postgres``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError
from cluster.local import HOST, Process, kill_process, process_alive, write_secret
from cluster.mlflow_server import server_command, server_env

DEFAULT_DIR = ".mixup-tracking"
DEFAULT_PORT = 5050
DEFAULT_DB_PORT = 5433
STATE_FILE = "tracking.json"
ADMIN = "admin"
DB_ROLE = "mixup"
DATABASES = ("mlflow", "mlflow_auth")
SERVER_USER = "postgres"  # Debian's system user that owns PostgreSQL clusters
ROOT_DATA = Path("/var/lib/postgresql/mixup-sweeps")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
START_TIMEOUT_S = 120


@dataclass
class TrackingState:
    state_dir: str
    host: str
    port: int
    db_port: int
    pg_home: str  # holds data/ (the cluster) and postgresql.log
    pg_bin: str
    run_as: str | None  # the system user the cluster runs as (None: the caller)
    mlflow_pid: int | None = None
    postmaster_pid: int | None = None

    @property
    def uri(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{shown}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return Path(self.pg_home) / "data"

    def save(self) -> None:
        Path(self.state_dir, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: str | Path) -> TrackingState:
        path = Path(state_dir).resolve() / STATE_FILE
        if not path.is_file():
            raise ClusterError(f"no tracking server in {path.parent} (start one with "
                               "`mixup-sweep tracking up`)")
        return cls(**json.loads(path.read_text()))


def up(state_dir: str | Path = DEFAULT_DIR, *, host: str = HOST, port: int | None = None,
       db_port: int | None = None, install: bool = True) -> TrackingState:
    """Starts (or restarts, on its existing data) the tracking server of ``state_dir``.

    Re-runnable: when both processes already run, returns their state and starts nothing.

    Raises:
        ClusterError: PostgreSQL is missing and cannot be installed, a port is taken, or a
            process did not come up (one line naming the log to read).
    """
    root = Path(state_dir).resolve()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    old = TrackingState.load(root) if (root / STATE_FILE).is_file() else None
    if old is not None and _mlflow_alive(old) and _postgres_alive(old):
        return old
    if old is not None:
        _stop(old)  # half up (one process died): start both afresh
    pg_bin = postgres_bin(install=install)
    run_as = SERVER_USER if os.geteuid() == 0 else None
    pg_home = (ROOT_DATA / hashlib.sha1(str(root).encode()).hexdigest()[:12] if run_as
               else root / "postgres")
    state = TrackingState(str(root), host, port or (old.port if old else DEFAULT_PORT),
                          db_port or (old.db_port if old else DEFAULT_DB_PORT),
                          str(pg_home), str(pg_bin), run_as)
    for what, number, bind in (("--port", state.port, host), ("--db-port", state.db_port, HOST)):
        if not port_free(bind, number):
            raise ClusterError(f"{what} {number}: already in use on {bind}")
    secret = _secrets(root, state.db_port)
    try:
        _start_postgres(state, secret["db_password"])
        state.save()
        _create_databases(state, secret["db_password"])
        _start_mlflow(state, secret)
        state.save()
    except BaseException:
        _stop(state)
        raise
    return state


def down(state_dir: str | Path = DEFAULT_DIR, *, drop: bool = False) -> list[str]:
    """Stops what ``up`` started from ``state_dir``; ``drop`` also deletes its data and secrets.

    Returns:
        What was stopped, e.g. ``["mlflow (pid 123)", "postgresql (pid 120)"]``.
    """
    state = TrackingState.load(state_dir)
    stopped = _stop(state)
    state.mlflow_pid = state.postmaster_pid = None
    state.save()
    if drop:
        shutil.rmtree(state.pg_home, ignore_errors=True)
        shutil.rmtree(state.state_dir, ignore_errors=True)
    return stopped


def status(state_dir: str | Path = DEFAULT_DIR) -> dict[str, Any]:
    state = TrackingState.load(state_dir)
    return {"uri": state.uri, "mlflow": _mlflow_alive(state), "mlflow_pid": state.mlflow_pid,
            "postgresql": _postgres_alive(state), "postmaster_pid": state.postmaster_pid,
            "db": f"postgresql://{DB_ROLE}@{HOST}:{state.db_port}/mlflow",
            "data": str(state.data_dir)}


def add_user(state_dir: str | Path, username: str, password: str | None = None) -> str:
    """Creates an MLflow user with the admin's credentials; returns its password (generated
    unless given). The user may read every experiment and write those it creates."""
    if not USER_NAME.match(username):
        raise ClusterError(f"user name {username!r}: letters, digits and _ . @ - only, "
                         "at most 64 characters")
    if password is not None and len(password) < 12:
        raise ClusterError("password: at least 12 characters")
    state = TrackingState.load(state_dir)
    if not _mlflow_alive(state):
        raise ClusterError(f"the tracking server of {state.state_dir} is not running "
                           "(`mixup-sweep tracking up`)")
    password = password or secrets.token_urlsafe(18)
    admin = admin_credentials(state_dir)
    _admin_request(state, "POST", "/api/2.0/mlflow/users/create",
                   {"username": username, "password": password}, admin)
    return password


def admin_credentials(state_dir: str | Path) -> dict[str, str]:
    """``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` of the server's admin."""
    text = Path(state_dir).resolve().joinpath("admin.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# ----------------------------------------------------------------------------- PostgreSQL


def postgres_bin(*, install: bool) -> Path:
    """The folder of Debian's PostgreSQL server programs (the newest installed version),
    installing the ``postgresql`` package first if it is missing and we may."""
    found = _find_postgres()
    if found is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's postgresql (apt-get) ...", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "postgresql"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["?"])[-1]
                raise ClusterError(f"{' '.join(command)} failed: {last}")
        found = _find_postgres()
    if found is None:
        raise ClusterError("PostgreSQL is not installed: `sudo apt-get install postgresql` "
                           "(Debian), then run `mixup-sweep tracking up` again")
    return found


def _find_postgres() -> Path | None:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.parent.parent.name)) or (0,)

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if debian:
        return debian[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(state: TrackingState, command: list[str]) -> list[str]:
    return ["runuser", "-u", state.run_as, "--", *command] if state.run_as else command


def _start_postgres(state: TrackingState, db_password: str) -> None:
    home, data = Path(state.pg_home), state.data_dir
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if state.run_as:
        shutil.chown(home, state.run_as, state.run_as)
    if not (data / "PG_VERSION").is_file():
        pwfile = home / "initdb-password"  # readable by the server user, gone once used
        write_secret(pwfile, db_password)
        if state.run_as:
            shutil.chown(pwfile, state.run_as, state.run_as)
        try:
            _run(_as_server_user(state, [
                str(Path(state.pg_bin, "initdb")), "-D", str(data), "-U", DB_ROLE,
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8"]), "initdb")
        finally:
            pwfile.unlink(missing_ok=True)
    options = (f"-c listen_addresses={HOST} -p {state.db_port} -c unix_socket_directories='' "
               "-c password_encryption=scram-sha-256")
    _run(_as_server_user(state, [
        str(Path(state.pg_bin, "pg_ctl")), "-D", str(data), "-l", str(home / "postgresql.log"),
        "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"]),
        f"PostgreSQL (log: {home / 'postgresql.log'})")
    state.postmaster_pid = int((data / "postmaster.pid").read_text().split()[0])


def _create_databases(state: TrackingState, db_password: str) -> None:
    import psycopg

    with psycopg.connect(host=HOST, port=state.db_port, user=DB_ROLE, password=db_password,
                         dbname="postgres", autocommit=True, connect_timeout=10) as connection:
        present = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in present:
                connection.execute(f'CREATE DATABASE "{name}"')


def _postgres_alive(state: TrackingState) -> bool:
    pid_file = state.data_dir / "postmaster.pid"
    if state.postmaster_pid is None or not process_alive(state.postmaster_pid):
        return False
    try:  # the pid is ours only while the cluster's own pid file names it
        return int(pid_file.read_text().split()[0]) == state.postmaster_pid
    except (OSError, ValueError, IndexError):
        return False


# --------------------------------------------------------------------------------- MLflow


def _secrets(root: Path, db_port: int) -> dict[str, str]:
    """The server's secrets, made once (0600 files) and kept across down/up."""
    made: dict[str, str] = {}
    for name, key in (("db_password", "db_password"), ("flask_secret", "flask_secret")):
        path = root / name
        if not path.is_file():
            write_secret(path, secrets.token_urlsafe(24))
        made[key] = path.read_text().strip()
    if not (root / "admin.env").is_file():
        write_secret(root / "admin.env", f"MLFLOW_TRACKING_USERNAME={ADMIN}\n"
                     f"MLFLOW_TRACKING_PASSWORD={secrets.token_urlsafe(18)}\n")
    made["admin_password"] = admin_credentials(root)["MLFLOW_TRACKING_PASSWORD"]
    # libpq's password file: host:port:database:user:password (the port may change on `up`)
    write_secret(root / "pgpass", f"{HOST}:{db_port}:*:{DB_ROLE}:{made['db_password']}\n")
    write_secret(root / "basic_auth.ini", "\n".join([
        "[mlflow]",
        "default_permission = READ",
        f"database_uri = {_db_uri(db_port, 'mlflow_auth')}",
        f"admin_username = {ADMIN}",
        f"admin_password = {made['admin_password']}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "grant_default_workspace_access = false", ""]))
    return made


def _db_uri(db_port: int, database: str) -> str:
    """SQLAlchemy URI with psycopg 3 and no password (libpq reads it from ``PGPASSFILE``)."""
    return f"postgresql+psycopg://{DB_ROLE}@{HOST}:{db_port}/{database}"


def _start_mlflow(state: TrackingState, secret: dict[str, str]) -> None:
    root = Path(state.state_dir)
    log = root / "mlflow.log"
    command = [*server_command(_db_uri(state.db_port, "mlflow"), host=state.host, port=state.port,
                               artifacts_destination=str(root / "artifacts")),
               "--app-name", "basic-auth"]
    env = {**server_env(), "PGPASSFILE": str(root / "pgpass"),
           "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secret["flask_secret"]}
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(key, None)
    with log.open("ab") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=root)
    state.mlflow_pid = proc.pid
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise ClusterError(f"the MLflow server exited with code {proc.returncode}: {tail[0]} "
                               f"(log: {log})")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{state.uri}/health",
                                                                  timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.3)
    raise ClusterError(f"the MLflow server did not answer within {START_TIMEOUT_S} s (log: {log})")


def _mlflow_alive(state: TrackingState) -> bool:
    if state.mlflow_pid is None or not process_alive(state.mlflow_pid):
        return False
    try:  # a recycled pid is not ours: check that it is still our server's command line
        command = Path(f"/proc/{state.mlflow_pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"mlflow" in command and str(state.port).encode() in command


def _admin_request(state: TrackingState, method: str, path: str, body: dict[str, Any],
                   credentials: dict[str, str]) -> dict[str, Any]:
    import base64

    token = base64.b64encode(f"{credentials['MLFLOW_TRACKING_USERNAME']}:"
                             f"{credentials['MLFLOW_TRACKING_PASSWORD']}".encode()).decode()
    request = urllib.request.Request(f"{state.uri}{path}", method=method,
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Basic {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("message", detail)
        raise ClusterError(f"{path}: HTTP {err.code}: {' '.join(detail.split())[:200]}") from None


# ------------------------------------------------------------------------------ processes


def _stop(state: TrackingState) -> list[str]:
    stopped = []
    if _mlflow_alive(state) and state.mlflow_pid is not None:  # never a recycled pid
        kill_process(Process("mlflow", state.mlflow_pid, ""))
        stopped.append(f"mlflow (pid {state.mlflow_pid})")
    if _postgres_alive(state):
        _run(_as_server_user(state, [str(Path(state.pg_bin, "pg_ctl")), "-D",
                                     str(state.data_dir), "-m", "fast", "-w", "stop"]),
             "pg_ctl stop")
        _wait_gone(state.postmaster_pid)  # pg_ctl returns once the pid file is gone
        stopped.append(f"postgresql (pid {state.postmaster_pid})")
    return stopped


def _wait_gone(pid: int | None, timeout: float = 30) -> None:
    """Waits until process ``pid`` has exited."""
    deadline = time.monotonic() + timeout
    while pid is not None and not exited(pid):
        if time.monotonic() >= deadline:
            raise ClusterError(f"PostgreSQL (pid {pid}) did not exit within {timeout:.0f} s")
        time.sleep(0.05)


def exited(pid: int) -> bool:
    """Whether process ``pid`` has ended: gone, or a zombie that its new parent (init, once
    ``pg_ctl`` has left) has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines() or ["(no output)"]
        raise ClusterError(f"{what} failed: {lines[-1]}")


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "0.0.0.0", port))
        except OSError:
            return False
    return True

"""A real multi-node Ray cluster on 127.0.0.1, plus an MLflow tracking server, for development.

``mixup-sweep cluster up --workers N`` starts a Ray head and N worker nodes (each its own
``ray start --block`` process, in its own process group, with its own CPUs and temp dir) and an
MLflow server over HTTP (one worker process). Every process's pid/process group is written to
``<state>/cluster.json``; ``cluster down`` signals exactly those process groups and nothing else
(``ray stop`` would kill every Ray process on the machine).

Ray's token authentication stays on: the launcher generates one token in ``<state>/auth_token``
and starts every node with ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH`` pointing at it;
drivers started by ``mixup-sweep run --address`` pick the same token from the state file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError
from cluster.mlflow_server import server_command, server_env

STATE_FILE = "cluster.json"
TOKEN_FILE = "auth_token"
DEFAULT_STATE_DIR = ".mixup-cluster"
HOST = "127.0.0.1"


@dataclass
class Process:
    role: str  # head, worker-1.., mlflow
    pid: int
    log: str
    resource: str | None = None  # the custom resource that identifies a worker node


@dataclass
class ClusterState:
    state_dir: str
    ray_address: str
    tracking_uri: str | None
    token_path: str
    temp_root: str = ""  # short path for Ray's per-node temp dirs (AF_UNIX sockets: <108 bytes)
    processes: list[Process] = field(default_factory=list)

    def save(self) -> None:
        Path(self.state_dir, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: str | Path) -> ClusterState:
        path = Path(state_dir).resolve() / STATE_FILE
        if not path.is_file():
            raise ClusterError(f"no cluster state in {path.parent} (start one with "
                               "`mixup-sweep cluster up`)")
        data = json.loads(path.read_text())
        data["processes"] = [Process(**p) for p in data["processes"]]
        return cls(**data)

    def env(self) -> dict[str, str]:
        """What a driver needs in its environment to join this cluster."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}


def write_secret(path: Path, text: str) -> None:
    """Writes ``text`` to a new file that is 0600 from its creation (never readable by others)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _spawn(command: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=log.parent)


def _node_env(token_path: Path) -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path),
            "RAY_USAGE_STATS_ENABLED": "0"}


def _wait_for_port(port: int, timeout: float, what: str, proc: subprocess.Popen[bytes],
                   log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise ClusterError(f"{what} exited with code {proc.returncode}: {tail[0]}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.3)
    raise ClusterError(f"{what} did not open port {port} within {timeout:.0f} s (log: {log})")


def start_worker(state: ClusterState, index: int, *, cpus: float) -> Process:
    """Adds worker node ``index`` to a running cluster (also used to replace a killed node)."""
    root = Path(state.state_dir)
    temp = Path(state.temp_root) / f"w{index}"
    temp.mkdir(exist_ok=True)
    resource = f"mixup_worker_{index}"
    log = root / f"worker-{index}.log"
    proc = _spawn([_bin("ray"), "start", "--address", state.ray_address,
                   "--node-ip-address", HOST, "--num-cpus", f"{int(cpus)}",
                   "--resources", json.dumps({resource: 1}), "--temp-dir", str(temp),
                   "--disable-usage-stats", "--block"],
                  log=log, env=_node_env(Path(state.token_path)))
    process = Process(f"worker-{index}", proc.pid, str(log), resource)
    state.processes.append(process)
    state.save()
    return process


def start_tracking_server(state: ClusterState, *, backend_uri: str | None = None,
                          port: int | None = None) -> Process:
    """An MLflow server on 127.0.0.1 (sqlite in the state dir unless ``backend_uri``)."""
    root = Path(state.state_dir)
    port = port or free_port()
    backend = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
    log = root / "mlflow.log"
    command = server_command(backend, host=HOST, port=port,
                             artifacts_destination=str(root / "mlartifacts"))
    proc = _spawn(command, log=log, env=server_env())
    _wait_for_port(port, 90, "the MLflow server", proc, log)
    _wait_for_http(f"http://{HOST}:{port}/health", 60)
    state.tracking_uri = f"http://{HOST}:{port}"
    state.processes = [p for p in state.processes if p.role != "mlflow"]
    state.processes.append(Process("mlflow", proc.pid, str(log)))
    state.save()
    return state.processes[-1]


def _wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise ClusterError(f"{url} did not answer within {timeout:.0f} s")


def up(state_dir: str | Path = DEFAULT_STATE_DIR, *, workers: int = 2, cpus_per_node: float = 1,
       head_cpus: float = 0, tracking: bool = True, backend_uri: str | None = None) -> ClusterState:
    """Starts the head, ``workers`` worker nodes and (unless ``tracking`` is False) MLflow.

    The head gets ``head_cpus`` CPUs (0 by default, so trials run on worker nodes only and a
    killed worker's trials must move to another worker).
    """
    _check_token_auth()
    root = Path(state_dir).resolve()
    if (root / STATE_FILE).exists() and any(process_alive(p.pid) for p in ClusterState.load(root).processes):
        raise ClusterError(f"a cluster is already running from {root}; `mixup-sweep cluster down` first")
    root.mkdir(parents=True, exist_ok=True)
    token_path = root / TOKEN_FILE
    write_secret(token_path, secrets.token_hex(32))
    port = free_port()
    temp_root = tempfile.mkdtemp(prefix="mixup-ray-")
    state = ClusterState(str(root), f"{HOST}:{port}", None, str(token_path), temp_root)
    head_temp = Path(temp_root) / "head"
    head_temp.mkdir(exist_ok=True)
    log = root / "head.log"
    try:
        proc = _spawn([_bin("ray"), "start", "--head", "--node-ip-address", HOST, "--port", str(port),
                       "--num-cpus", f"{int(head_cpus)}", "--include-dashboard", "false",
                       "--temp-dir", str(head_temp), "--disable-usage-stats", "--block"],
                      log=log, env=_node_env(token_path))
        state.processes.append(Process("head", proc.pid, str(log)))
        state.save()
        _wait_for_port(port, 90, "the Ray head", proc, log)
        for index in range(1, workers + 1):
            start_worker(state, index, cpus=cpus_per_node)
        if tracking:
            start_tracking_server(state, backend_uri=backend_uri)
        wait_for_nodes(state, workers + 1, timeout=120)
    except BaseException:
        down(root)
        raise
    return state


#: Ray honours ``RAY_AUTH_MODE=token`` from this release on; an older one ignores it and runs
#: the cluster unauthenticated without a word, so ``up`` refuses it.
TOKEN_AUTH_SINCE = (2, 52)


def _check_token_auth() -> None:
    import importlib.metadata

    version = importlib.metadata.version("ray")
    if tuple(int(part) for part in version.split(".")[:2]) < TOKEN_AUTH_SINCE:
        raise ClusterError(f"ray {version} ignores RAY_AUTH_MODE=token (Ray "
                           f"{TOKEN_AUTH_SINCE[0]}.{TOKEN_AUTH_SINCE[1]} added token "
                           "authentication): the cluster would run unauthenticated; install the "
                           "Ray that pyproject.toml declares")


def find_state(address: str, state_dir: str | Path | None = None) -> ClusterState | None:
    """The local cluster started by ``cluster up`` whose Ray address is ``address``, if any."""
    candidates = [state_dir, os.environ.get("MIXUP_CLUSTER_DIR"), DEFAULT_STATE_DIR]
    for folder in [c for c in candidates if c]:
        path = Path(folder) / STATE_FILE
        if path.is_file():
            state = ClusterState.load(folder)
            if state.ray_address == address:
                return state
    return None


def join_env(address: str) -> None:
    """Lets this process's Ray driver authenticate with a launcher-started cluster."""
    if "RAY_AUTH_TOKEN" in os.environ or "RAY_AUTH_TOKEN_PATH" in os.environ:
        return
    state = find_state(address)
    if state is not None:
        os.environ.update(state.env())


def alive_nodes(state: ClusterState) -> list[dict[str, Any]]:
    """Alive Ray nodes as seen by a short-lived driver process (keeps Ray out of this process)."""
    code = (f"import json, ray; ray.init(address={state.ray_address!r}, "
            "logging_level='ERROR', log_to_driver=False);"
            "print('NODES ' + json.dumps([{'node_id': n['NodeID'], 'resources': n['Resources']} "
            "for n in ray.nodes() if n['Alive']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **state.env()})
    if out.returncode != 0:
        raise ClusterError(f"cannot reach Ray at {state.ray_address}: "
                           f"{(out.stderr.strip().splitlines() or ['?'])[-1]}")
    # Ray prints its own notes (e.g. about a node that died) to stdout as well.
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("NODES ")), None)
    if line is None:
        raise ClusterError(f"no node list from Ray at {state.ray_address}: {out.stdout[-300:]!r}")
    nodes: list[dict[str, Any]] = json.loads(line[len("NODES "):])
    return nodes


def worker_of(state: ClusterState, node_id: str) -> Process:
    """The launcher's process of the worker node whose Ray node id is ``node_id``."""
    resources = next(n["resources"] for n in alive_nodes(state) if n["node_id"] == node_id)
    return next(p for p in state.processes if p.resource in resources)


def replace_worker(state: ClusterState, victim: Process, *, cpus: float = 1,
                   timeout: float = 120) -> Process:
    """Starts a new worker node in the place of ``victim`` (dead) and waits until Ray lists it
    among the alive nodes; returns the new node's process."""
    known = {n["node_id"] for n in alive_nodes(state)}  # the dead node may still be listed
    state.processes.remove(victim)
    process = start_worker(state, int(victim.role.split("-")[1]), cpus=cpus)
    deadline = time.monotonic() + timeout
    while not any(n["node_id"] not in known and process.resource in n["resources"]
                  for n in alive_nodes(state)):
        if time.monotonic() >= deadline:
            raise ClusterError(f"{process.role} did not join within {timeout:.0f} s")
        time.sleep(0.5)
    return process


def wait_for_nodes(state: ClusterState, count: int, *, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    nodes: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        nodes = alive_nodes(state)
        if len(nodes) >= count:
            return nodes
        time.sleep(1)
    raise ClusterError(f"only {len(nodes)} of {count} Ray nodes came up within {timeout:.0f} s")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_process(process: Process, *, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Signals the process group of ``process`` (the node and everything it started) and waits
    until the whole group is gone, escalating to SIGKILL after ``grace`` seconds."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(process.pid):
        _reap(process.pid)
        time.sleep(0.2)
    if _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(process.pid):
            _reap(process.pid)
            time.sleep(0.1)
    _reap(process.pid)


def _process_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(entry.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def _machine_of(root: int, table: dict[int, tuple[str, int, int]]) -> set[int]:
    """``root``'s process group and every live descendant of ``root`` (whatever their group)."""
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found = {pid for pid, (_, _, group) in table.items() if group == root}
    stack = [root, *found]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return {pid for pid in found if table.get(pid, ("Z",))[0] != "Z"}


def kill_machine(process: Process, *, timeout: float = 10.0) -> list[int]:
    """Kills a node the way a machine dies: all of its processes at once.

    Ray puts each worker in a process group of its own, so killing the node's group alone
    leaves its trial processes running for seconds. Here every process of the group and every
    descendant of ``process`` is frozen (SIGSTOP, repeated until no new one appears, so none can
    start another), then all are killed with SIGKILL together. Returns the pids killed.
    """
    frozen: set[int] = set()
    while True:
        fresh = _machine_of(process.pid, _process_table()) - frozen
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= fresh
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(process.pid)
        table = _process_table()
        if not any(table.get(pid, ("Z",))[0] != "Z" for pid in frozen):
            return sorted(frozen)
        time.sleep(0.05)
    raise ClusterError(f"{process.role}: processes still alive {timeout:.0f} s after SIGKILL")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def down(state_dir: str | Path = DEFAULT_STATE_DIR) -> list[str]:
    """Stops exactly the processes ``up`` started (workers, then MLflow, then the head)."""
    state = ClusterState.load(state_dir)
    order = sorted(state.processes, key=lambda p: {"head": 2, "mlflow": 1}.get(p.role, 0))
    stopped = []
    for process in order:
        if process_alive(process.pid):
            kill_process(process)
            stopped.append(f"{process.role} (pid {process.pid})")
    state.processes = []
    state.save()
    if state.temp_root:
        shutil.rmtree(state.temp_root, ignore_errors=True)
    return stopped

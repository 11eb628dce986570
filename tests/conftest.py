"""Fixtures and helpers shared by the tests: a free port, a bounded wait for an event, and a
real MLflow server over HTTP (the project's own server command line, in its own process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from cluster.local import free_port

__all__ = ["free_port", "start_mlflow_server", "stop_group", "wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], *, timeout: float, what: str,
               every: float = 0.05) -> T:
    """Polls ``condition`` until it returns something truthy (returned) or ``timeout`` seconds
    pass (AssertionError naming ``what``): a wait on an event, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL after 10 s; waits for the leader."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def start_mlflow_server(backend_uri: str, workdir: Path, *,
                        timeout: float = 90) -> tuple[subprocess.Popen[bytes], str]:
    """``mlflow server`` on ``backend_uri`` and a free port; returns (process, base URL) once
    ``/health`` answers. The caller stops it with :func:`stop_group`."""
    from cluster.mlflow_server import server_command, server_env

    port = free_port()
    log = workdir / f"mlflow-server-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(server_command(backend_uri, host="127.0.0.1", port=port),
                                  cwd=workdir, env=server_env(), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited with {server.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    try:
        wait_until(healthy, timeout=timeout, what="the MLflow server answering /health",
                   every=0.3)
    except BaseException:
        stop_group(server)
        raise
    return server, base


@pytest.fixture
def mlflow_http(tmp_path: Path) -> Iterator[str]:
    """A real MLflow server over HTTP on a fresh sqlite store, for one test."""
    server, base = start_mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path)
    try:
        yield base
    finally:
        stop_group(server)

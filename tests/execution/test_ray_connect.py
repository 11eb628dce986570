"""Local means local, and a cluster that cannot be joined is one line before anything is written."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.sweep_helpers import CLI, NO_REPORT, cli_env, write_spec

pytestmark = pytest.mark.slow

ALPHA = {"mixup.alpha": {"kind": "grid", "values": [0.0]}}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_address_the_sweep_runs_on_a_private_local_ray_whatever_ray_address_says(tmp_path):
    spec = write_spec(tmp_path, "local", search_space=ALPHA)
    stale = f"127.0.0.1:{_closed_port()}"  # a cluster that is gone, as a stale file would name
    env = {**cli_env(), "RAY_ADDRESS": stale}
    started = time.monotonic()
    out = subprocess.run([*CLI, "run", str(spec), "--storage", "res", NO_REPORT], cwd=tmp_path,
                         capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1/1 trials finished" in out.stdout
    assert time.monotonic() - started < 120


@pytest.fixture
def not_ray() -> Iterator[str]:
    """A port where something answers TCP that is not Ray (an HTTP server): the TCP probe
    passes, and Ray's own client retries, printing a line a second, before it gives up."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("where", ["closed port", "not Ray"])
def test_an_address_that_cannot_be_joined_fails_in_one_line_before_sweep_json(
        tmp_path, request, where):
    spec = write_spec(tmp_path, "nowhere", search_space=ALPHA)
    address = (f"127.0.0.1:{_closed_port()}" if where == "closed port"
               else request.getfixturevalue("not_ray"))
    started = time.monotonic()
    out = subprocess.run([*CLI, "run", str(spec), "--storage", "res", "--address", address,
                          NO_REPORT], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=cli_env())
    took = time.monotonic() - started
    assert out.returncode == 2, (out.stdout[-1000:], out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--address {address}" in lines[0], lines
    assert took < 30, took
    assert not (tmp_path / "res" / "nowhere").exists()

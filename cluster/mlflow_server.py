"""The ``mlflow server`` command line the cluster's launchers start (no MLflow import here)."""

from __future__ import annotations

import os
import sys


def server_command(backend_uri: str, *, host: str, port: int,
                   artifacts_destination: str | None = None) -> list[str]:
    """The ``mlflow server`` command line: one worker process, bound to ``host``."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    if artifacts_destination:
        command += ["--artifacts-destination", artifacts_destination]
    return command


def server_env() -> dict[str, str]:
    """The server's environment: no job-execution workers (~0.5 GB and 6 s instead of 3 GB)."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

"""``mixup-sweep ui [NAME]``: the MLflow UI on 127.0.0.1, opened on a sweep's runs."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from mixup_cli.sweep_commands import _tracking_uri
from sweeps.errors import UsageError
from sweeps.sweep import list_sweep_handles


def ui(args: argparse.Namespace) -> int:
    """The MLflow UI on 127.0.0.1: the store and the port are checked before anything is
    printed (one line and exit 2 when either is wrong), then the URL of the newest sweep's
    runs in that store (or of the experiments list when it has none)."""
    import socket

    if not 1 <= args.port <= 65535:
        raise UsageError(f"ui --port {args.port}: a port is 1-65535")
    uri = _tracking_uri(args.tracking_uri)
    if uri.startswith("http"):
        print(f"The tracking server already serves the UI: {uri}")
        return 0
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):].partition("?")[0])
        if not path.is_file():
            raise UsageError(f"ui: no MLflow store at {path}; run a sweep here first or pass "
                             "--tracking-uri sqlite:////path/to/mlflow.db")
        from sweeps.tracking import rebase_artifacts

        rebase_artifacts(uri)  # a copied store shows its own artifacts, not the original's
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            raise UsageError(f"ui --port {args.port}: 127.0.0.1:{args.port} is in use; pass "
                             "--port with a free one") from None
    base = f"http://127.0.0.1:{args.port}"
    url = base + _latest_runs_page(uri, args.storage)
    print(f"MLflow UI for {uri}: {url} (Ctrl-C stops it)", flush=True)
    from cluster.mlflow_server import server_command, server_env

    return subprocess.call(server_command(uri, host="127.0.0.1", port=args.port), env=server_env())


def _latest_runs_page(uri: str, storage: str) -> str:
    """``/#/experiments/<id>/runs`` of the newest sweep in ``storage`` logged to ``uri``."""
    for sweep in list_sweep_handles(storage):
        if sweep.meta.get("tracking_uri") != uri:
            continue
        from sweeps.tracking import SweepTracker

        experiment = SweepTracker(uri, sweep_name=sweep.name).existing_experiment_id()
        if experiment is not None:
            return f"/#/experiments/{experiment}/runs"
    return "/#/experiments"

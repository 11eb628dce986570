"""``mixup-sweep ui [NAME]``: the MLflow UI on 127.0.0.1, opened on a sweep's runs."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from mixup_cli.sweep_commands import reported_metrics
from sweeps.errors import UsageError
from sweeps.sweep import Sweep, list_sweep_handles


def ui(args: argparse.Namespace) -> int:
    """The MLflow UI on 127.0.0.1: the port, the sweep and the store are checked before anything
    is printed (one line and exit 2 when one is wrong), then the URL of the sweep's child runs,
    flat and sorted by the objective at each trial's chosen epoch: sweep NAME's, else the
    newest sweep's logged to the store (or the experiments list when it has none). A tracking
    server serves the UI already: its URL is printed and nothing is started."""
    import socket

    from sweeps.tracking import rebase_artifacts, resolve_tracking_uri

    if not 1 <= args.port <= 65535:
        raise UsageError(f"ui --port {args.port}: a port is 1-65535")
    sweep = Sweep.load(args.name, storage=args.storage) if args.name else None
    if args.tracking_uri or sweep is None:
        uri = resolve_tracking_uri(args.tracking_uri, Path.cwd(), flag="ui --tracking-uri")
    else:
        uri = sweep.tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):].partition("?")[0])
        if not path.is_file():
            raise UsageError(f"ui: no MLflow store at {path}; run a sweep here first or pass "
                             "--tracking-uri sqlite:////path/to/mlflow.db")
        rebase_artifacts(uri)  # a copied store shows its own artifacts, not the original's
    if uri.startswith("http"):
        page = _runs_page(uri, sweep, args.storage) if sweep is not None else ""
        print(f"The tracking server already serves the UI: {uri.rstrip('/')}{page}")
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            raise UsageError(f"ui --port {args.port}: 127.0.0.1:{args.port} is in use; pass "
                             "--port with a free one") from None
    url = f"http://127.0.0.1:{args.port}" + _runs_page(uri, sweep, args.storage)
    print(f"MLflow UI for {uri}: {url} (Ctrl-C stops it)", flush=True)
    from cluster.mlflow_server import server_command, server_env

    return subprocess.call(server_command(uri, host="127.0.0.1", port=args.port), env=server_env())


def _runs_page(uri: str, sweep: Sweep | None, storage: str) -> str:
    """The UI path of ``sweep``'s runs in ``uri`` (None: the newest sweep in ``storage``
    logged there; ``/#/experiments`` when there is none).

    Raises:
        UsageError: ``sweep`` has no runs in ``uri``.
    """
    if sweep is not None:
        page = _sweep_page(uri, sweep)
        if page is None:
            raise UsageError(f"ui {sweep.name}: {uri} holds no runs of sweep {sweep.name!r} "
                             f"(it was logged to {sweep.tracking_uri})")
        return page
    for newest in list_sweep_handles(storage):
        if newest.meta.get("tracking_uri") == uri and (page := _sweep_page(uri, newest)):
            return page
    return "/#/experiments"


def _sweep_page(uri: str, sweep: Sweep) -> str | None:
    """``/#/experiments/<id>/runs?...``: the sweep's child runs, flat, best first, with the
    test metrics ``best`` reports beside the objective (None: no experiment in ``uri``)."""
    from sweeps.errors import TrackingUnavailable
    from sweeps.tracking import SweepTracker, bounded_http, tracking_unusable

    metric, mode = sweep.objective
    try:
        _, epochs = sweep.tables()
        shown = reported_metrics(metric, list(epochs.columns))
    except UsageError:  # no tables to read yet: the objective's columns only
        shown = []
    tracker = SweepTracker(uri, sweep_name=sweep.name, sweep_id=sweep.meta.get("sweep_id"),
                           name_keys=sweep.searched_keys)
    try:
        with bounded_http(10):  # a server that is down: seconds, not MLflow's retries
            return tracker.runs_page(metric=metric, mode=mode,
                                     metrics=[f"best/{m}" for m in shown])
    except TrackingUnavailable:
        raise
    except Exception as err:  # whatever failed, the UI cannot be opened there: one line
        raise tracking_unusable(uri, err) from err

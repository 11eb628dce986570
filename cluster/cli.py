"""``mixup-sweep cluster up|down|status``: what the local launcher prints."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cluster import local


def find_state(address: str, state_dir: str | Path | None = None) -> local.ClusterState | None:
    """The local cluster started by ``cluster up`` whose Ray address is ``address``, if any."""
    candidates = [state_dir, os.environ.get("MIXUP_CLUSTER_DIR"), local.DEFAULT_STATE_DIR]
    for folder in [c for c in candidates if c]:
        path = Path(folder) / local.STATE_FILE
        if path.is_file():
            state = local.ClusterState.load(folder)
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


def main(args: argparse.Namespace) -> int:
    if args.action == "up":
        if args.workers < 0:
            raise local.ClusterError("--workers: must be >= 0")
        state = local.up(args.dir, workers=args.workers, cpus_per_node=args.cpus_per_node,
                         head_cpus=args.head_cpus, tracking=not args.no_tracking,
                         backend_uri=args.backend_store_uri)
        print(f"Ray head:        {state.ray_address}  ({args.workers} worker node(s), "
              f"{args.cpus_per_node} CPU(s) each; token auth on)")
        if state.tracking_uri:
            print(f"MLflow server:   {state.tracking_uri}  (UI and REST API)")
        print(f"State and logs:  {Path(state.state_dir)}")
        print(f"Token:           {state.token_path}")
        print("Run a sweep on it:")
        uri = f" --tracking-uri {state.tracking_uri}" if state.tracking_uri else ""
        print(f"  mixup-sweep run SPEC --address {state.ray_address}{uri}")
        print("Other drivers (ray, python) need: "
              + " ".join(f"{k}={v}" for k, v in state.env().items()))
        return 0
    if args.action == "down":
        stopped = local.down(args.dir)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    state = local.ClusterState.load(args.dir)
    for process in state.processes:
        status = "alive" if local._alive(process.pid) else "dead"
        print(f"{process.role:<10} pid {process.pid:<8} {status}")
    return 0

"""``mixup-sweep cluster up|down|status``: what the local launcher prints."""

from __future__ import annotations

import argparse
from pathlib import Path

from cluster import local


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
        status = "alive" if local.process_alive(process.pid) else "dead"
        print(f"{process.role:<10} pid {process.pid:<8} {status}")
    return 0

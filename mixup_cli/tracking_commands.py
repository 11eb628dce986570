"""``mixup-sweep tracking up|down|status|add-user``: the shared tracking server's commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster import tracking_server


def main(args: argparse.Namespace) -> int:
    if args.action == "up":
        state = tracking_server.up(args.dir, host=args.host, port=args.port, db_port=args.db_port)
        admin = Path(state.state_dir, "admin.env")
        print(f"MLflow server:  {state.uri}  (basic auth; bound to {state.host})")
        print(f"PostgreSQL:     {tracking_server.HOST}:{state.db_port}  (data: {state.data_dir})")
        print(f"Admin login:    {admin}  (0600; `set -a; . {admin}; set +a` to use it)")
        print("Add a user:     mixup-sweep tracking add-user NAME"
              + ("" if args.dir == tracking_server.DEFAULT_DIR else f" --dir {args.dir}"))
        print("Run a sweep as that user:")
        print(f"  MLFLOW_TRACKING_USERNAME=NAME MLFLOW_TRACKING_PASSWORD=... "
              f"mixup-sweep run SPEC --tracking-uri {state.uri}")
        return 0
    if args.action == "down":
        stopped = tracking_server.down(args.dir, drop=args.drop)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        if args.drop:
            print("deleted: its data, users and secrets")
        return 0
    if args.action == "add-user":
        if not args.user:
            raise tracking_server.ClusterError("add-user: give the new user's NAME")
        given = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        password = tracking_server.add_user(args.dir, args.user, given)
        print(f"created MLflow user {args.user!r}")
        if given is None:
            print(f"password: {password}  (shown once)")
        return 0
    info = tracking_server.status(args.dir)
    print(f"MLflow server:  {info['uri']}  "
          f"{'running' if info['mlflow'] else 'stopped'} (pid {info['mlflow_pid']})")
    print(f"PostgreSQL:     {info['db']}  "
          f"{'running' if info['postgresql'] else 'stopped'} (pid {info['postmaster_pid']})")
    print(f"Data:           {info['data']}")
    return 0 if info["mlflow"] and info["postgresql"] else 1

"""The ``mixup-sweep`` command line.

Each subcommand is a thin layer over a library call. Bad input ends with one line on stderr and
exit code 2; a diverged training run ends with exit code 1 after printing what it produced.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cluster.errors import ClusterError
from sweeps.errors import (
    SpecError,
    TrackingUnavailable,
    UsageError,
    storage_fault,
    storage_refusal,
)

EXIT_USAGE = 2
EXIT_FAILED = 1


def _add_trial_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        metavar="KEY=VALUE", help="override one dotted config key (repeatable)")


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: no abbreviated options (``--num-sample 3`` is an error, never
    a silent ``--num-samples``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixup-sweep", description="Hyperparameter sweeps for Mixup research.")
    parser.add_argument("--version", action="version", version=f"mixup-sweep {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="run one trial in this process (no Ray)",
                       **_command_help("mixup-sweep train --set mixup.alpha=1.0 --set optim.epochs=200"))
    p.add_argument("config", nargs="?", metavar="SPEC_OR_CONFIG",
                   help="a trial config YAML, or a sweep spec (its `trial` section is used)")
    _add_trial_args(p)
    p.add_argument("--json", action="store_true",
                   help="print the final metrics as one JSON object on the last line of stdout")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser("reproduce", help="the paper's comparison table, in this process",
                       **_command_help("mixup-sweep reproduce --seeds 5"))
    p.add_argument("config", nargs="?", metavar="SPEC_OR_CONFIG",
                   help="a trial config YAML, or a sweep spec (its `trial` section); default: "
                   "the paper's default task")
    _add_trial_args(p)
    p.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    p.add_argument("--unpacked", action="store_true",
                   help="train the runs one after another instead of as one pack")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on the last line")
    p.set_defaults(handler=_cmd_reproduce)

    p = sub.add_parser("plan", help="show a sweep's resolved trials; starts nothing",
                       **_command_help("mixup-sweep plan sweeps/specs/paper_feature_noise.yaml"))
    p.add_argument("spec", metavar="SPEC", help="a sweep spec YAML (see sweeps/specs/)")
    p.add_argument("--smoke", action="store_true", help="plan the shrunk smoke version")
    p.set_defaults(handler=_cmd_plan)

    p = sub.add_parser("run", help="run a sweep on Ray (local by default)",
                       **_command_help("mixup-sweep run sweeps/specs/paper_feature_noise.yaml --smoke"))
    p.add_argument("spec", metavar="SPEC", help="a sweep spec YAML (see sweeps/specs/)")
    p.add_argument("--address", help="join an existing Ray cluster (e.g. 127.0.0.1:6379; auto: "
                   "the running one); default: a private local Ray")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else sqlite:///./mlflow.db)")
    _add_storage(p)
    p.add_argument("--name", help="sweep name (default: the spec's name)")
    p.add_argument("--allow-same-name", action="store_true",
                   help="log beside a sweep of this name from another storage folder in the same "
                   "tracking store (each keeps its own runs; refused by default)")
    p.add_argument("--num-samples", type=int, help="override search.num_samples")
    p.add_argument("--max-concurrent", type=int, help="override search.max_concurrent")
    p.add_argument("--pack", type=_pack_arg, metavar="N|auto",
                   help="override execution.pack: trials per Ray trial (1: one each)")
    p.add_argument("--smoke", action="store_true",
                   help="a shrunk run (few epochs, one seed, two samples) to check the spec; "
                   "named NAME-smoke unless --name is given")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="override one spec value (repeatable): a trial key (optim.epochs=50) or a "
                   "key under search, scheduler, execution, resources, objective or seeds "
                   "(execution.pack=4); kept in sweep.json, so resume runs the same spec")
    _add_report(p)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("resume", help="continue an interrupted sweep",
                       **_command_help("mixup-sweep resume paper_feature_noise"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.add_argument("--address", help="Ray cluster address (default: the one it ran on)")
    p.add_argument("--allow-changed-plugins", action="store_true",
                   help="resume even when a plugin's code changed since the sweep started")
    _add_report(p)
    p.set_defaults(handler=_cmd_resume)

    p = sub.add_parser("plugins", help="list the registered label schemes, models, data sets "
                       "and metrics, and where each came from",
                       **_command_help("mixup-sweep plugins examples/plugins/spec.yaml"))
    p.add_argument("spec", metavar="SPEC", nargs="?",
                   help="also load the plugins this sweep spec names")
    p.set_defaults(handler=_cmd_plugins)

    p = sub.add_parser("best", help="the best configs of a sweep",
                       **_command_help("mixup-sweep best paper_feature_noise "
                                       "--where mixup.stop_epoch=never --format csv"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.add_argument("--metric", help="choose by this metric (default: the sweep's objective, a "
                   "val/ metric; a test/ metric works but warns that it is optimistic)")
    p.add_argument("--mode", choices=["max", "min"],
                   help="max or min (default: the sweep's mode for its objective; min for "
                   "losses and stds)")
    p.add_argument("--scope", choices=["best-epoch", "last"], default="best-epoch",
                   help="rank each trial by its best logged epoch or by its last one")
    p.add_argument("--top", type=int, default=5, help="how many trials to show")
    p.add_argument("--source", choices=["parquet", "mlflow"], default="parquet",
                   help="rank from the sweep's Parquet tables or rebuild them from MLflow")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only trials whose config has KEY=VALUE, e.g. mixup.label_scheme=same "
                   "or mixup.stop_epoch=never (repeatable: all must hold)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table",
                   help="table (default), a JSON array, or CSV with one row per trial")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--by", action="append", default=[], metavar="KEY",
                   help="instead of trials: the objective's mean and interval per value of KEY "
                   "(a searched config key, e.g. mixup.alpha; 'all' for every searched key)")
    p.add_argument("--pareto", action="store_true",
                   help="only the trials on the Pareto front of the sweep's objectives (a "
                   "multi-objective sweep), all of them")
    p.set_defaults(handler=_cmd_best)

    p = sub.add_parser("list", help="the sweeps in the storage folder, newest first",
                       **_command_help("mixup-sweep list --storage sweep_results"))
    _add_storage(p)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser("status", help="a sweep's trials in flight and its ETA",
                       **_command_help("mixup-sweep status paper_feature_noise"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser("delete", help="delete a sweep: its folder and its MLflow runs",
                       **_command_help("mixup-sweep delete paper_feature_noise-smoke --yes"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    p.set_defaults(handler=_cmd_delete)

    p = sub.add_parser("export", help="write a sweep's tables to Parquet or CSV files",
                       **_command_help("mixup-sweep export paper_feature_noise --out results/trials.csv"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.add_argument("--out", required=True, metavar="FILE.parquet|FILE.csv",
                   help="the trials table; the epochs table goes beside it (FILE.epochs.*)")
    p.set_defaults(handler=_cmd_export)

    p = sub.add_parser("sync", help="replay a sweep's records into MLflow (after an outage)",
                       **_command_help("mixup-sweep sync paper_feature_noise --tracking-uri http://127.0.0.1:5000"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.add_argument("--tracking-uri", help="default: the URI the sweep ran with")
    p.set_defaults(handler=_cmd_sync)

    p = sub.add_parser("cluster", help="a local multi-node Ray cluster + MLflow server",
                       **_command_help("mixup-sweep cluster up --workers 2"))
    p.add_argument("action", choices=["up", "down", "status"],
                   help="start the cluster, stop exactly what `up` started, or show it")
    p.add_argument("--workers", type=int, default=2, help="worker nodes (default 2)")
    p.add_argument("--cpus-per-node", type=int, default=1, help="CPUs each worker node offers")
    p.add_argument("--head-cpus", type=int, default=0,
                   help="CPUs the head offers to trials (default 0: trials run on workers)")
    p.add_argument("--backend-store-uri", help="MLflow backend (default: sqlite in the state "
                   "dir; e.g. postgresql+psycopg://user@127.0.0.1/mlflow)")
    p.add_argument("--no-tracking", action="store_true", help="start no MLflow server")
    p.add_argument("--dir", default=".mixup-cluster", help="state dir (default ./.mixup-cluster)")
    p.set_defaults(handler=_cmd_cluster)

    p = sub.add_parser("tracking", help="a shared MLflow server on PostgreSQL with user accounts",
                       **_command_help("mixup-sweep tracking up && mixup-sweep tracking add-user alice"))
    p.add_argument("action", choices=["up", "down", "status", "add-user"],
                   help="start (or restart) the server, stop exactly what `up` started, show "
                   "it, or create a user")
    p.add_argument("user", nargs="?", metavar="NAME", help="add-user: the new user's name")
    p.add_argument("--dir", default=".mixup-tracking",
                   help="state dir: secrets (0600), logs, artifacts (default ./.mixup-tracking)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the MLflow server binds (default 127.0.0.1; 0.0.0.0 shares "
                   "it on the network)")
    p.add_argument("--port", type=int, help="the MLflow server's port (default 5050, or the "
                   "port it had)")
    p.add_argument("--db-port", type=int, help="PostgreSQL's port on 127.0.0.1 (default 5433, "
                   "or the port it had)")
    p.add_argument("--drop", action="store_true",
                   help="down: also delete the database, users and secrets")
    p.add_argument("--password-stdin", action="store_true",
                   help="add-user: read the password from stdin instead of generating one")
    p.set_defaults(handler=_cmd_tracking)

    p = sub.add_parser("report", help="figures + one HTML page of a sweep, from its Parquet records",
                       **_command_help("mixup-sweep report paper_feature_noise --importance ped-anova"))
    p.add_argument("name", metavar="NAME", help="the sweep's name (its folder under --storage)")
    _add_storage(p)
    p.add_argument("--out", metavar="DIR", help="default: <storage>/<name>/report/")
    p.add_argument("--no-mlflow", action="store_true",
                   help="do not log it to the sweep's MLflow parent run")
    p.add_argument("--importance", choices=["auto", "fanova", "ped-anova"], default="auto",
                   help="parameter importance: auto (default) is PED-ANOVA where its top 10%% "
                   "holds >= 10 trials and does not end inside a tie, else fANOVA (the report "
                   "says why); fanova or ped-anova asks for one (PED-ANOVA still refused where "
                   "unsound)")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("completion", help="print the shell code for tab completion",
                       **_command_help("mixup-sweep completion bash > "
                                       "~/.local/share/bash-completion/completions/mixup-sweep"))
    p.add_argument("shell", nargs="?", default="bash", choices=["bash", "zsh", "fish", "tcsh"],
                   help="the shell (default bash)")
    p.set_defaults(handler=_cmd_completion)

    p = sub.add_parser("ui", help="the MLflow UI on 127.0.0.1",
                       **_command_help("mixup-sweep ui paper_feature_noise --port 5001"))
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="open on this sweep's runs (default: the newest sweep logged to the store)")
    p.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    p.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    _add_storage(p)
    p.set_defaults(handler=_cmd_ui)
    return parser


def _sweep_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Tab completion of a sweep NAME: the sweeps in ``--storage``."""
    from sweeps.store.layout import list_sweeps

    return [n for n in list_sweeps(getattr(parsed_args, "storage", "sweep_results"))
            if n.startswith(prefix)]


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answers a shell's tab-completion request (argcomplete; only when the shell asks, so
    other invocations never import it)."""
    import argcomplete

    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in commands.choices.values():
        for action in command._actions:
            if action.dest == "name" and not action.option_strings:
                action.completer = _sweep_names
    argcomplete.autocomplete(parser)


def _cmd_completion(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["mixup-sweep"], shell=args.shell))
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mixup-sweeps")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _pack_arg(value: str) -> int | str:
    """``auto`` or an integer; the range is checked with the spec (one error line, exit 2)."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer, got {value!r}") from None


def _command_help(example: str) -> dict[str, Any]:
    """A subcommand's help layout: every option's default shown, and an example."""
    return {"formatter_class": _Formatter, "epilog": f"example:\n  {example}"}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless it already names its default or has
    none (None, a flag's False, an empty list); the epilog's example is kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, [], argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: {default})"


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="show Ray's and MLflow's start-up messages")
    parser.add_argument("--no-report", action="store_true",
                        help="do not build the report (figures + HTML, logged to the sweep's "
                        "MLflow parent run) at the end")


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default="sweep_results", metavar="DIR",
                        help="folder holding the sweeps (default: ./sweep_results)")


def _cmd_train(args: argparse.Namespace) -> int:
    from mixup_cli.single import run_single_trial

    return run_single_trial(args.config, args.assignments, as_json=args.json)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from mixup_cli.single import run_reproduction

    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds: must be in [1, {MAX_SEEDS}], got {args.seeds}")
    return run_reproduction(args.config, args.assignments, seeds=args.seeds, as_json=args.json,
                            packed=not args.unpacked)


def _cmd_plan(args: argparse.Namespace) -> int:
    from sweeps.spec import format_plan, load_spec
    from sweeps.store.tables import optimistic_warning

    spec = load_spec(args.spec)
    print(format_plan(spec.shrunk() if args.smoke else spec))
    if (warning := optimistic_warning(spec.objective.metric)) is not None:
        print(warning, file=sys.stderr)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from mixup_cli import sweep_commands

    return sweep_commands.run(args)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from mixup_core import plugins

    plugins.load_installed()
    if args.spec:
        from sweeps.spec import load_spec

        load_spec(args.spec)
    print(plugins.format_listing())
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from mixup_cli import sweep_commands

    return sweep_commands.resume(args)


def _cmd_best(args: argparse.Namespace) -> int:
    from mixup_cli import sweep_commands

    return sweep_commands.best(args)


def _cmd_list(args: argparse.Namespace) -> int:
    from mixup_cli import manage_commands

    return manage_commands.list_sweeps(args)


def _cmd_status(args: argparse.Namespace) -> int:
    from mixup_cli import manage_commands

    return manage_commands.status(args)


def _cmd_delete(args: argparse.Namespace) -> int:
    from mixup_cli import manage_commands

    return manage_commands.delete(args)


def _cmd_export(args: argparse.Namespace) -> int:
    from sweeps.sweep import Sweep

    for path in Sweep.load(args.name, storage=args.storage).export(args.out):
        print(path)
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    from sweeps.execution.driver import sync

    count = sync(args.name, storage=args.storage, tracking_uri=args.tracking_uri)
    print(f"{count} trial(s) replayed into MLflow")
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from mixup_cli import cluster_commands

    return cluster_commands.main(args)


def _cmd_tracking(args: argparse.Namespace) -> int:
    from mixup_cli import tracking_commands

    return tracking_commands.main(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from dashboards.report import build_report, progress_lines
    from sweeps.sweep import Sweep

    report = build_report(Sweep.load(args.name, storage=args.storage), out=args.out,
                          mlflow=not args.no_mlflow, importance=args.importance,
                          progress=progress_lines())
    print(report.html)
    for note in report.notes:
        print(f"  skipped: {note}")
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from mixup_cli import ui_command

    return ui_command.ui(args)


#: ``reproduce --seeds``: each seed is a member of one pack, so the bound is the pack's.
MAX_SEEDS = 1024


def _usage_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input. A trial config's ConfigError counts only once
    mixup_core has been imported (it cannot be raised before), so `best` never imports torch."""
    errors: list[type[Exception]] = [UsageError, SpecError, TrackingUnavailable, ClusterError]
    core = sys.modules.get("mixup_core.errors")
    if core is not None:
        errors.append(core.ConfigError)
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    if "_ARGCOMPLETE" in os.environ:
        _complete(parser)  # prints the completions and exits
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _usage_errors() as err:
        print(f"mixup-sweep {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"mixup-sweep {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the storage refused a write nobody above turned into a line
        if (refusal := storage_refusal(err)) is None:
            raise
        print(f"mixup-sweep {args.command}: error: {storage_fault(refusal, 'a write')}",
              file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    """The ``mixup-sweep`` program: :func:`main`, then a prompt exit.

    Everything a command produces is on disk when :func:`main` returns (records, tables,
    MLflow flushed or left for ``sync``). What remains is the interpreter's teardown, which
    after a sweep took ~2 s (unloading torch's and Ray's libraries) on top of Ray's own
    shutdown: so Ray is shut down here, the streams flushed, and the process ends.
    """
    try:
        code = main()
    except BrokenPipeError:  # the reader went away (`mixup-sweep best NAME | head`): say no more
        code = 141  # what a shell reports for a program ended by SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()

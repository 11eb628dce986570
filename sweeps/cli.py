"""The ``mixup-sweep`` command line.

Each subcommand is a thin layer over a library call. Bad input ends with one line on stderr and
exit code 2; a diverged training run ends with exit code 1 after printing what it produced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mixup_core.config import ConfigError
from sweeps.trial_io import UsageError

EXIT_USAGE = 2
EXIT_FAILED = 1


def _add_trial_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        metavar="KEY=VALUE", help="override one dotted config key (repeatable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixup-sweep", description="Hyperparameter sweeps for Mixup research.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="run one trial in this process (no Ray)")
    p.add_argument("config", nargs="?", metavar="SPEC_OR_CONFIG",
                   help="a trial config YAML, or a sweep spec (its `trial` section is used)")
    _add_trial_args(p)
    p.add_argument("--json", action="store_true",
                   help="print the final metrics as one JSON object on the last line of stdout")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser("reproduce", help="the paper's comparison table, in this process")
    p.add_argument("config", nargs="?", metavar="SPEC_OR_CONFIG")
    _add_trial_args(p)
    p.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on the last line")
    p.set_defaults(handler=_cmd_reproduce)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from sweeps.single import run_single_trial

    return run_single_trial(args.config, args.assignments, as_json=args.json)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from sweeps.single import run_reproduction

    if args.seeds < 1:
        raise UsageError("--seeds: must be >= 1")
    return run_reproduction(args.config, args.assignments, seeds=args.seeds, as_json=args.json)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UsageError, ConfigError) as err:
        print(f"mixup-sweep {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"mixup-sweep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `perflab` command: one subcommand per module in perflab/commands/."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from perflab import __version__
from perflab.errors import PerflabError

if TYPE_CHECKING:
    from perflab.commands import Command


def build_parser(verb: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The parser with every verb; with ``verb``, only that verb's module is imported (and
    only its arguments known): the others are names with their help line, enough for
    argparse to pick one and for `perflab --help`, which so imports no verb's module."""
    # Imported here, not at the top: a verb's module may load polars and DuckDB (seconds),
    # and a Ctrl-C meanwhile must end inside main's handlers, as one line.
    from perflab.commands import HELPS, VERBS, load

    parser = argparse.ArgumentParser(
        prog="perflab",
        description="Performance lab: ingest pprof, cProfile, k6 and PostgreSQL statistics "
        "into one DuckDB store, and read them back as pprof, k6 and PgHero would.",
    )
    parser.add_argument("--version", action="version", version=f"perflab {__version__}")
    parser.add_argument(
        "--store",
        help="DuckDB store file (default: $PERFLAB_STORE or data/perflab.duckdb)",
    )
    parser.add_argument(
        "--max-decompressed",
        metavar="SIZE",
        help="cap on the decompressed size of a gzipped input, e.g. 2G "
        "(default: $PERFLAB_MAX_DECOMPRESSED or 8G)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules: dict[str, Command] = {}
    for name in VERBS:
        if name != verb:
            sub.add_parser(name, help=HELPS[name])
            continue
        module = load(name)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        # The global options are accepted after the verb too (`perflab top --store S ...`).
        p.add_argument("--store", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--max-decompressed", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.prepare_parser(p)
        modules[module.NAME] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM ends a command like Ctrl-C does, so cleanup in finally blocks runs.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        parser, modules = build_parser(verb_in(sys.argv[1:] if argv is None else argv))
        args = parser.parse_args(argv)
        if args.command not in modules:  # a verb verb_in did not see: parse again with its module
            parser, modules = build_parser(args.command)
            args = parser.parse_args(argv)
        cap = getattr(args, "max_decompressed", None)
        if cap:
            from perflab.ingest._io import parse_size

            try:
                parse_size(cap)
            except ValueError:
                raise PerflabError(f"--max-decompressed {cap!r}: not a size (e.g. 512M, 8G)") from None
            # Every verb that takes FILE_OR_SOURCE may ingest; the environment reaches them all.
            os.environ["PERFLAB_MAX_DECOMPRESSED"] = cap
        if args.command != "cleanup":
            # What a SIGKILLed perflab left (its lab's processes, its temp files) goes first,
            # with a line saying so; `perflab cleanup` does only this.
            from perflab.leases import reap

            reap(lambda line: print(f"perflab: {line}", file=sys.stderr))
        return int(modules[args.command].run(args) or 0)
    except PerflabError as err:
        print(f"perflab: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        # `perflab top ... | head` closes stdout early; that is not an error.
        return 0
    except Exception as exc:
        if is_interrupt(exc):
            return _interrupted()
        raise


# Global options that take a value (before the verb).
_VALUED = ("--store", "--max-decompressed")


def verb_in(argv: Sequence[str]) -> str | None:
    """The verb of a command line, when it names one (else None: no verb's module is loaded,
    for `perflab --help` or argparse's own error)."""
    from perflab.commands import VERBS

    args = iter(argv)
    for arg in args:
        if arg in _VALUED:
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


# Exit status of a command ended by Ctrl-C or SIGTERM (128 + SIGINT), as shells report it.
INTERRUPTED_EXIT = 130


def _interrupted() -> int:
    print("perflab: interrupted", file=sys.stderr)
    return INTERRUPTED_EXIT


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C as a library reports it: DuckDB turns the KeyboardInterrupt raised inside a query
    into its InterruptException, or a RuntimeError "Query interrupted" when fetching a result."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.InterruptException):
        return True
    return isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())

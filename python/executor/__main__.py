"""Command line entry point: ``python -m executor --socket PATH --registry FILE --policy-root DIR``.

Run with ``PYTHONPATH=<python dir>:<generated python dir>`` so that ``sdk``, ``executor`` and
``tollgate.executor.v1`` import. Exit status: 0 after a graceful shutdown, 1 when the server
cannot start, 2 for bad arguments or an unreadable registry.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from executor import logs, output
from executor.batch import Runtime
from executor.cache import InstanceCache
from executor.loader import RegistryError, load_policies, read_registry
from executor.server import serve

log = logging.getLogger("executor")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses the command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m executor",
        description="Tollgate's Python policy executor: serves the engine's calls on a Unix socket.",
    )
    parser.add_argument("--socket", required=True, type=Path, help="Unix socket path to listen on")
    parser.add_argument(
        "--workers", type=_positive_int, default=4, help="threads running policy code (default 4)"
    )
    parser.add_argument(
        "--registry",
        required=True,
        type=Path,
        help="generated policy_registry.py defining PYTHON_POLICIES",
    )
    parser.add_argument(
        "--policy-root",
        required=True,
        type=Path,
        help="directory the registry's policy paths are relative to",
    )
    parser.add_argument("--log-level", choices=sorted(logs.LEVELS), default="info", help="default info")
    parser.add_argument(
        "--max-message-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest message frame accepted or sent (default 64 MiB; must fit buffered bodies)",
    )
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="replace the live executor serving on --socket (the engine recycling it) instead of refusing",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Loads the policies, serves until SIGTERM/SIGINT and returns the exit status."""
    args = parse_args(argv)
    logs.configure(args.log_level, output.redirect())
    try:
        registry = read_registry(args.registry)
    except RegistryError as error:
        log.error("cannot read the policy registry", extra={"error": str(error)})
        return 2
    policies = load_policies(registry, args.policy_root)
    for key, reason in policies.failed.items():
        log.error("policy %s failed to load: %s", key, reason, extra={"policy": key, "error": reason})
    log.info(
        "policies loaded",
        extra={"loaded": sorted(policies.loaded), "failed": sorted(policies.failed)},
    )
    runtime = Runtime(policies=policies, cache=InstanceCache())
    try:
        finished = asyncio.run(
            serve(args.socket, runtime, args.workers, args.max_message_bytes, take_over=args.take_over)
        )
    except (OSError, RuntimeError) as error:
        log.error(
            "cannot serve on %s: %s",
            args.socket,
            error,
            extra={"socket": str(args.socket), "error": str(error)},
        )
        return 1
    if not finished:
        # Worker threads stuck in policy code would keep the interpreter alive forever.
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m executor.check --registry FILE --policy-root DIR``: can every policy be loaded?

Imports each policy of a registry exactly as the executor does at startup, without serving,
and prints one JSON object on stdout: registry key -> why that policy failed to load (empty
when all load). ``validate`` runs it with the interpreter the executor would use, so import
errors and missing requirements show before ``serve``. A policy class that still defines
``mode()`` is reported too: ``processingMode`` in ``policy-definition.yaml`` decides the
phases, so such a method would silently not do what it says. The registry is the generated
``policy_registry.py`` or a ``.json`` file with the same ``PYTHON_POLICIES`` mapping.
Exit status: 0 when the check ran (whatever it found), 2 when the registry cannot be read.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from executor.loader import LoadedPolicy, RegistryError, check_registry, load_policies, read_registry
from sdk.policy import Policy

STALE_MODE = (
    "{cls} defines mode(), which the engine does not read: processingMode in "
    "policy-definition.yaml decides the phases (see docs/python.md); remove mode()"
)


def stale_mode(policy: LoadedPolicy) -> str | None:
    """Why a loaded policy's module is misleading: a Policy subclass with a ``mode()``."""
    module = sys.modules.get(f"{policy.package}.policy")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if issubclass(cls, Policy) and any("mode" in vars(base) for base in cls.__mro__):
            return STALE_MODE.format(cls=cls.__name__)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the check; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m executor.check", description=__doc__)
    parser.add_argument("--registry", required=True, type=Path, help="policy_registry.py or a .json mapping")
    parser.add_argument("--policy-root", required=True, type=Path, help="base of the registry's paths")
    args = parser.parse_args(argv)
    # What policies print while importing must not corrupt the result: it goes to stderr.
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        if args.registry.suffix == ".json":
            registry = check_registry(json.loads(args.registry.read_text(encoding="utf-8")), args.registry)
        else:
            registry = read_registry(args.registry)
    except (OSError, ValueError, RegistryError) as error:
        print(f"cannot read the policy registry: {error}", file=sys.stderr)
        return 2
    policies = load_policies(registry, args.policy_root)
    failed = dict(policies.failed)
    for key, policy in policies.loaded.items():
        reason = stale_mode(policy)
        if reason is not None:
            failed[key] = reason
    result.write(json.dumps(failed) + "\n")
    result.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

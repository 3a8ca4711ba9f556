"""Imports the policies listed in the generated registry, once, at startup.

Each policy directory becomes a package with a unique, sanitized name (``add-python-header``
at major version ``v1`` becomes ``tollgate_policy_add_python_header_v1``) whose ``policy``
submodule defines ``get_policy``. Making the directory a package lets a policy split its
code into helper modules imported relatively (``from . import rules``) without its
directory ever being put on ``sys.path``, where module names of different policies would
clash. A policy that cannot be imported does not stop the executor: its failure is kept and
reported by the health answer and on every call of that policy.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, cast

from executor.output import running
from sdk.policy import PolicyMetadata

Factory = Callable[[PolicyMetadata, dict[str, Any]], object]
"""A policy's ``get_policy``."""


class RegistryError(Exception):
    """The registry file cannot be read; the executor cannot start without it."""


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy whose module imported and has a ``get_policy`` factory."""

    key: str
    name: str
    version: str
    package: str
    factory: Factory
    blocking: bool = True
    """False when the definition declares that the policy never blocks: it may run inline."""


@dataclass
class PolicySet:
    """The outcome of loading: policies ready to run and the reasons others are not."""

    loaded: dict[str, LoadedPolicy] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def lookup(self, name: str, version: str) -> LoadedPolicy | str | None:
        """The policy for an invocation; its load failure reason; or None if unknown."""
        key = registry_key(name, version)
        return self.loaded.get(key) or self.failed.get(key)


@functools.lru_cache(maxsize=1024)  # asked for on every call, of a handful of policies
def registry_key(name: str, version: str) -> str:
    """The registry key of a policy version: ``name:vMAJOR`` (``"v1.2.0"`` -> ``"name:v1"``)."""
    major = version.split(".", 1)[0]
    return f"{name}:{major if major.startswith('v') else 'v' + major}"


@dataclass(frozen=True)
class RegistryEntry:
    """One policy of the generated registry."""

    name: str
    version: str
    path: str
    blocking: bool = True


def read_registry(path: Path) -> dict[str, RegistryEntry]:
    """``PYTHON_POLICIES`` from a generated ``policy_registry.py``, checked for shape."""
    spec = importlib.util.spec_from_file_location("tollgate_policy_registry", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise RegistryError(f"{path}: not a readable Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise RegistryError(f"{path}: {type(error).__name__}: {error}") from error
    return check_registry(getattr(module, "PYTHON_POLICIES", None), path)


def check_registry(registry: object, path: Path) -> dict[str, RegistryEntry]:
    """A ``PYTHON_POLICIES`` mapping read from ``path``, checked for shape."""
    if not isinstance(registry, Mapping):
        raise RegistryError(f"{path}: PYTHON_POLICIES is missing or not a dict")
    checked: dict[str, RegistryEntry] = {}
    for key, entry in registry.items():
        if not isinstance(key, str) or not isinstance(entry, Mapping):
            raise RegistryError(f"{path}: entry {key!r} is not a 'name:vN' -> dict item")
        missing = [f for f in ("name", "version", "path") if not isinstance(entry.get(f), str)]
        if missing:
            raise RegistryError(f"{path}: entry {key!r} lacks string field(s) {', '.join(missing)}")
        blocking = entry.get("blocking", True)
        if not isinstance(blocking, bool):
            raise RegistryError(f"{path}: entry {key!r} has a non-boolean 'blocking'")
        checked[key] = RegistryEntry(entry["name"], entry["version"], entry["path"], blocking)
    return checked


def package_name(key: str, taken: set[str]) -> str:
    """A valid, unused module name for the policy with registry key ``key``."""
    base = "tollgate_policy_" + re.sub(r"\W", "_", key.replace(":", "_")).lower()
    name, n = base, 2
    while name in taken or name in sys.modules:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _forget(package: str) -> None:
    for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[module]


def import_factory(package: str, directory: Path) -> Factory:
    """Imports ``directory`` as ``package`` and returns its ``policy.get_policy``.

    The directory's ``__init__.py`` runs if it has one. On failure nothing stays in
    ``sys.modules``.
    """
    if not (directory / "policy.py").is_file():
        raise FileNotFoundError(f"no policy.py in {directory}")
    init = directory / "__init__.py"
    spec: ModuleSpec | None
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            package, init, submodule_search_locations=[str(directory)]
        )
    else:
        spec = ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(directory)]
    if spec is None:
        raise ImportError(f"cannot import {directory} as a package")
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
        policy_module = importlib.import_module(f"{package}.policy")
        factory = getattr(policy_module, "get_policy", None)
        if not callable(factory):
            raise AttributeError("policy.py does not define a callable get_policy(metadata, params)")
    except BaseException:
        _forget(package)
        raise
    return cast(Factory, factory)


def load_policies(registry: Mapping[str, RegistryEntry], root: Path) -> PolicySet:
    """Imports every registry entry; failures are recorded, never raised."""
    result = PolicySet()
    taken: set[str] = set()
    for key, entry in registry.items():
        package = package_name(key, taken)
        try:
            with running(key):
                factory = import_factory(package, root / entry.path)
        except (Exception, SystemExit) as error:  # a policy's import must not stop the executor
            result.failed[key] = f"{type(error).__name__}: {error}"
            continue
        result.loaded[key] = LoadedPolicy(
            key, entry.name, entry.version, package, factory, blocking=entry.blocking
        )
    return result

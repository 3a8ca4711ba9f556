"""The instance cache: one factory call per (name, version, params_hash), failures cached."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from executor.cache import InstanceCache, PolicyInitError
from sdk.policy import Policy, PolicyMetadata
from tests.support import (
    ExecutorProcess,
    StreamClient,
    call_one,
    error_of,
    execute_request,
    invocation,
    lines,
    run,
)


def _factory_calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def _instance(response: Any) -> str:
    return dict(lines(response.results[0].modifications.set_headers))["x-instance"]


def test_same_params_hash_reuses_one_instance(executor: ExecutorProcess, tmp_path: Path) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log), "tag": "same"}
    first = call_one(executor.socket, execute_request([invocation("counted", params, route="route-1")]))
    second = call_one(executor.socket, execute_request([invocation("counted", params, route="route-2")]))
    assert _factory_calls(log) == 1
    assert _instance(first) == _instance(second)
    # The instance remembers the metadata of the call that created it, and its own identity.
    headers = dict(lines(second.results[0].modifications.set_headers))
    assert headers["x-factory-route"] == "route-1"
    assert headers["x-factory-policy"] == "counted@v1.0.0"


def test_cache_key_is_the_engines_hash_not_the_params(executor: ExecutorProcess, tmp_path: Path) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log), "tag": "hash"}
    a = call_one(executor.socket, execute_request([invocation("counted", params, hash_="hash-a")]))
    b = call_one(executor.socket, execute_request([invocation("counted", params, hash_="hash-b")]))
    a_again = call_one(executor.socket, execute_request([invocation("counted", params, hash_="hash-a")]))
    assert _factory_calls(log) == 2
    assert _instance(a) != _instance(b)
    assert _instance(a) == _instance(a_again)


def test_version_is_part_of_the_key(executor: ExecutorProcess, tmp_path: Path) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log)}
    a = call_one(executor.socket, execute_request([invocation("counted", params, version="v1.0.0")]))
    b = call_one(executor.socket, execute_request([invocation("counted", params, version="v1.1.0")]))
    assert _factory_calls(log) == 2
    assert _instance(a) != _instance(b)


def test_concurrent_first_calls_run_the_factory_once(executor: ExecutorProcess, tmp_path: Path) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log), "tag": "race", "factoryDelay": 0.3}

    async def scenario() -> list[str]:
        async with StreamClient(executor.socket) as client:
            calls = [client.call(execute_request([invocation("counted", params)])) for _ in range(16)]
            return [_instance(response) for response in await asyncio.gather(*calls)]

    instances = run(scenario())
    assert _factory_calls(log) == 1
    assert len(set(instances)) == 1


def test_factory_failure_is_cached_and_reported_on_every_call(
    executor: ExecutorProcess, tmp_path: Path
) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log), "tag": "broken", "fail": True}
    for _ in range(3):
        response = call_one(executor.socket, execute_request([invocation("counted", params)]))
        assert error_of(response.results[0]) == ("ERROR_KIND_INIT", "ValueError: bad configuration broken")
    assert _factory_calls(log) == 1


def test_concurrent_calls_of_a_failing_factory_call_it_once(
    executor: ExecutorProcess, tmp_path: Path
) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log), "fail": True, "factoryDelay": 0.2}

    async def scenario() -> list[tuple[str, str]]:
        async with StreamClient(executor.socket) as client:
            calls = [client.call(execute_request([invocation("counted", params)])) for _ in range(8)]
            return [error_of(response.results[0]) for response in await asyncio.gather(*calls)]

    errors = run(scenario())
    assert {kind for kind, _ in errors} == {"ERROR_KIND_INIT"}
    assert _factory_calls(log) == 1


def test_factory_returning_something_else_than_a_policy_is_an_init_error(
    executor: ExecutorProcess, tmp_path: Path
) -> None:
    log = tmp_path / "factory.log"
    params = {"log": str(log), "returnNone": True}
    for _ in range(2):
        response = call_one(executor.socket, execute_request([invocation("counted", params)]))
        assert error_of(response.results[0]) == (
            "ERROR_KIND_INIT",
            "get_policy returned NoneType, not a Policy",
        )
    assert _factory_calls(log) == 1


def test_init_error_follows_the_failure_rule(executor: ExecutorProcess, tmp_path: Path) -> None:
    broken = {"log": str(tmp_path / "factory.log"), "fail": True}
    request = execute_request(
        [invocation("counted", broken, on_failure="continue"), invocation("add-python-header")]
    )
    response = call_one(executor.socket, request)
    assert [r.WhichOneof("outcome") for r in response.results] == ["error", "modifications"]


def test_close_all_closes_every_instance_even_when_one_close_fails(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[str] = []

    class Closing(Policy):
        def close(self) -> None:
            if self.params["fail"]:
                raise RuntimeError("cannot close")
            closed.append(self.params["tag"])

    cache = InstanceCache()

    def closing(tag: str, fail: bool) -> Callable[[], object]:
        return lambda: Closing(PolicyMetadata(), {"tag": tag, "fail": fail})

    for tag, fail in (("a", True), ("b", False)):
        cache.get(("p", "v1.0.0", tag), closing(tag, fail))
    with pytest.raises(PolicyInitError):
        cache.get(("broken", "v1.0.0", "x"), lambda: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="executor"):
        assert cache.close_all() == 1
    assert closed == ["b"]
    assert "failed to close" in caplog.text
    assert len(cache) == 0, "every instance is dropped"

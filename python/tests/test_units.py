"""Unit tests of executor internals whose edge cases are awkward to reach over the socket."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from executor.cache import InstanceCache, PolicyInitError
from executor.jsonvalue import NotJsonError, dict_to_struct, struct_to_dict
from executor.loader import package_name, registry_key
from executor.logs import JsonFormatter
from executor.running import RunningCalls, call_deadline
from sdk.policy import ImmediateResponse, UpstreamRequestModifications
from tests.support import struct


def test_struct_round_trip_restores_integers_and_empty_containers() -> None:
    data: dict[str, Any] = {"i": 3, "f": 2.5, "big": 2**40, "s": "x", "b": False, "n": None, "o": {}, "l": []}
    data["nested"] = {"list": [1, {"deep": [2.0, "y"]}]}
    back = struct_to_dict(dict_to_struct(data, "data"))
    assert back == data
    assert isinstance(back["i"], int)
    assert isinstance(back["nested"]["list"][1]["deep"][0], int)
    assert back["o"] == {}
    assert back["l"] == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"k": {1, 2}}, "data['k']: set is not a JSON value"),
        ({"k": [b"bytes"]}, "data['k'][0]: bytes is not a JSON value"),
        ({"k": math.nan}, "data['k']: nan is not a finite number"),
        ({"k": 10**400}, "is not a finite number"),
        ({1: "x"}, "data: key 1 is not a string"),
        (["not", "a", "dict"], "data: list is not a JSON object"),
    ],
)
def test_non_json_values_are_refused_with_their_location(value: object, message: str) -> None:
    with pytest.raises(NotJsonError, match=message.replace("[", r"\[").replace("]", r"\]")):
        dict_to_struct(value, "data")


def test_self_referencing_metadata_is_refused_not_a_recursion_error() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(NotJsonError, match="nested more than"):
        dict_to_struct(loop, "metadata")


def test_cache_runs_the_factory_once_under_thread_contention() -> None:
    cache = InstanceCache()
    calls: list[int] = []
    barrier = threading.Barrier(16)

    class Instance:
        def on_request(self) -> None: ...
        def on_response(self) -> None: ...

    def factory() -> Instance:
        calls.append(1)
        time.sleep(0.05)
        return Instance()

    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        results.append(cache.get(("p", "v1.0.0", "h"), factory))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len({id(r) for r in results}) == 1
    assert len(cache) == 1


def test_cache_keeps_factory_failures_per_key() -> None:
    cache = InstanceCache()
    calls: list[str] = []

    def failing() -> object:
        calls.append("x")
        raise KeyError("missing")

    for _ in range(3):
        with pytest.raises(PolicyInitError, match="KeyError: 'missing'"):
            cache.get(("p", "v1", "bad"), failing)
    assert calls == ["x"]


def test_registry_keys_and_package_names() -> None:
    assert registry_key("jwt-auth", "v1.2.3") == "jwt-auth:v1"
    assert registry_key("jwt-auth", "2.0.0") == "jwt-auth:v2"
    taken: set[str] = set()
    assert package_name("add-python-header:v1", taken) == "tollgate_policy_add_python_header_v1"
    assert package_name("add_python.header:v1", taken) == "tollgate_policy_add_python_header_v1_2"


def test_json_formatter_puts_extra_fields_at_the_top_level() -> None:
    import json
    import logging

    record = logging.LogRecord("executor.batch", logging.WARNING, __file__, 1, "policy failed", None, None)
    record.policy = "p:v1"
    record.call_id = 7
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning"
    assert line["logger"] == "executor.batch"
    assert line["msg"] == "policy failed"
    assert (line["policy"], line["call_id"]) == ("p:v1", 7)
    assert line["time"].endswith("+00:00")


def test_sdk_defaults_translate_to_empty_messages() -> None:
    from executor.translate import Changes, read_action
    from tollgate.executor.v1 import executor_pb2 as pb

    assert read_action(None, pb.PHASE_REQUEST) == Changes()
    assert read_action(UpstreamRequestModifications(), pb.PHASE_REQUEST).to_proto() == pb.Modifications()
    immediate = read_action(ImmediateResponse(), pb.PHASE_RESPONSE).to_proto()
    assert immediate == pb.ImmediateResponse(status_code=500)
    assert struct({}) == dict_to_struct({}, "x")


def test_running_calls_count_only_calls_past_their_deadline_while_they_run() -> None:
    now = [100.0]
    running = RunningCalls(clock=lambda: now[0])
    inside = threading.Barrier(3)
    release = threading.Event()

    def call(deadline: float) -> str:
        def work() -> str:
            inside.wait()
            release.wait()
            return "done"

        return running.run(deadline, work)

    threads = [
        threading.Thread(target=call, args=(call_deadline(100.0, 500),)),
        threading.Thread(target=call, args=(call_deadline(100.0, 0),)),
    ]
    for thread in threads:
        thread.start()
    inside.wait()
    assert running.overdue() == 0
    now[0] = 100.6  # past the 500 ms budget; the call without a budget is never overdue
    assert running.overdue() == 1
    release.set()
    for thread in threads:
        thread.join()
    assert running.overdue() == 0
    assert call_deadline(100.0, 0) == math.inf

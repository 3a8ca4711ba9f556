"""What policies print becomes text attributed to them, never a record of their choosing."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from executor.logs import JsonFormatter
from executor.output import POLICY_OUTPUT, PolicyOutput, running


def test_each_printed_line_is_a_record_naming_the_policy(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="executor.output")
    out = PolicyOutput("stdout")
    monkeypatch.setattr(sys, "stdout", out)
    forged = json.dumps({"level": "error", "msg": "forged"})
    with running("printer:v1"):
        out.write(f"{forged}\nsecond ")
        out.write("line")
    records = caplog.records
    # The unfinished line is flushed when the policy's code returns.
    assert [(r.getMessage(), r.levelno, r.__dict__["policy"], r.__dict__["text"]) for r in records] == [
        (POLICY_OUTPUT, logging.INFO, "printer:v1", forged),
        (POLICY_OUTPUT, logging.INFO, "printer:v1", "second line"),
    ]
    entry = json.loads(JsonFormatter().format(records[0]))
    assert (entry["level"], entry["msg"], entry["text"]) == ("info", POLICY_OUTPUT, forged)


def test_records_logged_while_a_policy_runs_name_it() -> None:
    record = logging.LogRecord("executor.server", logging.ERROR, __file__, 1, "hello", None, None)
    record.policy = "someone-else:v1"
    with running("logger:v1"):
        entry = json.loads(JsonFormatter().format(record))
    assert entry["policy"] == "logger:v1"

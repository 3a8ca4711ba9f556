"""Startup: which policies load, what the health answer reports, and the socket it serves on."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from tests.support import (
    PYTHON_DIR,
    ExecutorProcess,
    call_one,
    error_of,
    execute_request,
    executor_env,
    health,
    invocation,
    lines,
    run,
    write_registry,
)


def test_health_reports_loaded_and_failed_policies_truthfully(executor: ExecutorProcess) -> None:
    report = run(health(executor.socket))
    assert report.ready
    assert report.loaded_policies == 10
    assert report.workers == 8
    failed = sorted(report.failed_policies)
    assert len(failed) == 2
    assert failed[0].startswith("broken-import:v1: ImportError: tollgate_test_missing_dependency")
    assert failed[1].startswith("no-factory:v1: AttributeError: ")
    assert "get_policy" in failed[1]


def test_calls_served_counts_answered_calls(executor: ExecutorProcess) -> None:
    before = run(health(executor.socket)).calls_served
    call_one(executor.socket, execute_request([invocation("add-python-header")]))
    call_one(executor.socket, execute_request([invocation("add-python-header")]))
    assert run(health(executor.socket)).calls_served >= before + 2


def test_policy_that_failed_to_load_reports_why_on_every_call(executor: ExecutorProcess) -> None:
    for _ in range(2):
        response = call_one(executor.socket, execute_request([invocation("broken-import")]))
        kind, message = error_of(response.results[0])
        assert kind == "ERROR_KIND_INIT"
        assert "broken-import:v1 failed to load: ImportError" in message


def test_unknown_policy_is_not_found(executor: ExecutorProcess) -> None:
    response = call_one(executor.socket, execute_request([invocation("no-such-policy")]))
    assert error_of(response.results[0]) == (
        "ERROR_KIND_NOT_FOUND",
        "no-such-policy:v1 is not in the executor's registry",
    )
    # The registry is keyed by major version: v2 of a known policy is unknown too.
    response = call_one(executor.socket, execute_request([invocation("add-python-header", version="v2.0.0")]))
    assert error_of(response.results[0])[0] == "ERROR_KIND_NOT_FOUND"


def test_any_minor_version_of_the_registered_major_runs(executor: ExecutorProcess) -> None:
    response = call_one(executor.socket, execute_request([invocation("add-python-header", version="v1.4.2")]))
    assert lines(response.results[0].modifications.set_headers) == [("x-python-policy", "hello-from-python")]


def test_policy_with_helper_module_imported_relatively_runs(executor: ExecutorProcess) -> None:
    # scripted/policy.py does `from .snapshot import snapshot`.
    response = call_one(executor.socket, execute_request([invocation("scripted", {"label": "a"})]))
    assert response.results[0].WhichOneof("outcome") == "modifications"


def test_socket_is_owner_only_in_a_created_directory(executor: ExecutorProcess) -> None:
    mode = executor.socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_startup_logs_are_json_lines_naming_loaded_and_failed_policies(executor: ExecutorProcess) -> None:
    records = executor.log_records()
    assert all({"time", "level", "logger", "msg"} <= record.keys() for record in records)
    loaded = next(r for r in records if r["msg"] == "policies loaded")
    assert loaded["level"] == "info"
    assert "add-python-header:v1" in loaded["loaded"]
    assert loaded["failed"] == ["broken-import:v1", "no-factory:v1"]
    failures = {r["policy"]: r for r in records if r["msg"].endswith(f"failed to load: {r.get('error')}")}
    assert set(failures) == {"broken-import:v1", "no-factory:v1"}
    # The message itself names the policy and the cause, for readers of plain-text logs.
    assert failures["no-factory:v1"]["msg"] == (
        "policy no-factory:v1 failed to load: AttributeError: "
        "policy.py does not define a callable get_policy(metadata, params)"
    )
    assert any(r["msg"] == "executor serving" for r in records)


def _run_executor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        cwd=PYTHON_DIR,
        env=executor_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreadable_registry_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "policy_registry.py"
    bad.write_text("PYTHON_POLICIES = ['not', 'a', 'dict']\n")
    result = _run_executor(
        tmp_path, "--socket", str(tmp_path / "s.sock"), "--registry", str(bad), "--policy-root", str(tmp_path)
    )
    assert result.returncode == 2
    assert "PYTHON_POLICIES is missing or not a dict" in result.stderr
    assert not (tmp_path / "s.sock").exists()


def test_a_registry_entry_with_a_non_boolean_blocking_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "policy_registry.py"
    bad.write_text(
        'PYTHON_POLICIES = {"a:v1": {"name": "a", "version": "v1.0.0", "path": "a", "blocking": "no"}}\n'
    )
    result = _run_executor(
        tmp_path, "--socket", str(tmp_path / "s.sock"), "--registry", str(bad), "--policy-root", str(tmp_path)
    )
    assert result.returncode == 2
    assert "non-boolean 'blocking'" in result.stderr


def test_missing_required_arguments_exit_2(tmp_path: Path) -> None:
    result = _run_executor(tmp_path, "--socket", str(tmp_path / "s.sock"))
    assert result.returncode == 2
    assert "--registry" in result.stderr


def test_path_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    precious = tmp_path / "data.txt"
    precious.write_text("keep me")
    registry = write_registry(tmp_path / "policy_registry.py", {})
    result = _run_executor(
        tmp_path, "--socket", str(precious), "--registry", str(registry), "--policy-root", str(tmp_path)
    )
    assert result.returncode == 1
    assert "is not a socket" in result.stderr
    assert precious.read_text() == "keep me"


def test_the_executor_needs_no_grpc_at_run_time(tmp_path: Path) -> None:
    # grpcio is a dev-only package now (its protoc generates the protobuf modules): block it.
    code = "import sys; sys.modules['grpc'] = None; import executor.__main__, executor.server"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PYTHON_DIR,
        env=executor_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

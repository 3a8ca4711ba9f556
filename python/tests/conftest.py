"""Fixtures: one executor process shared by the tests that do not stop or restart it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.support import ALL_POLICIES, ExecutorProcess, PolicyEntry, SpawnExecutor


@pytest.fixture(scope="session")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutorProcess]:
    """A running executor with every test policy and both samples, 8 workers."""
    process = ExecutorProcess(tmp_path_factory.mktemp("executor")).start()
    yield process
    status = process.stop()
    assert status == 0, process.log_text()
    # Every line the executor wrote is a JSON record: no stray warnings or tracebacks.
    records = process.log_records()
    assert records[-1]["msg"] == "executor stopped"


@pytest.fixture
def spawn_executor(tmp_path: Path) -> Iterator[SpawnExecutor]:
    """Starts dedicated executors (for tests that stop them); kills any left running."""
    started: list[ExecutorProcess] = []

    def spawn(
        policies: Mapping[str, PolicyEntry] = ALL_POLICIES,
        workers: int = 8,
        extra_args: Sequence[str] = (),
    ) -> ExecutorProcess:
        process = ExecutorProcess(tmp_path / f"executor-{len(started)}", policies, workers, extra_args)
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait()

"""Type checks that tie the SDK's annotations to the policies written against it.

The Appendix A sample must stay exactly as published, so the project-wide mypy run skips
it (its ``params: dict`` is not strict-clean); here it is checked on its own, allowing only
that. A deliberately wrong policy shows the SDK's types catch real mistakes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "python" / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_appendix_a_policy_type_checks_against_the_sdk(tmp_path: Path) -> None:
    result = _mypy("--allow-any-generics", "policies/add-python-header/policy.py", cache=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sdk_types_reject_a_response_action_from_on_request(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_policy.py"
    wrong.write_text(
        "from typing import Any\n"
        "from sdk.policy import (Policy, RequestAction, RequestContext, ResponseAction, ResponseContext,\n"
        "    UpstreamResponseModifications)\n\n\n"
        "class Wrong(Policy):\n"
        "    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:\n"
        "        return UpstreamResponseModifications(status_code=201)\n\n"
        "    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:\n"
        "        return None\n"
    )
    result = _mypy(str(wrong), cache=tmp_path / "cache")
    assert result.returncode == 1
    assert 'Incompatible return value type (got "UpstreamResponseModifications"' in result.stdout

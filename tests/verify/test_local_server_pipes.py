"""Checks over the local verifier child's pipes are scored as `POST /verify` scores them."""

from __future__ import annotations

import pytest
from verifykit import post_verify

from gym_operator.verify.local_server import CheckFailed, local_verifier_process

TASK = {"test_cases": [{"input": "", "output": "x"}]}


async def test_a_pipe_check_scores_as_the_http_endpoint(http) -> None:
    async with local_verifier_process("code_execution", {}, timeout_seconds=30) as child:
        outcome = await child.check(TASK, "print('x')")
        status, answer = await post_verify(http, child.url, TASK, "print('x')")
    assert outcome["reward"] == answer["reward"] == 1.0
    assert status == 200


async def test_a_stuck_pipe_check_is_a_504_naming_the_timeout_and_the_child_keeps_scoring() -> None:
    config = {"timeoutSeconds": 20}
    async with local_verifier_process("code_execution", config, timeout_seconds=2.0) as child:
        with pytest.raises(CheckFailed) as failed:
            await child.check(TASK, "import time\ntime.sleep(20)")
        assert failed.value.status == 504
        assert str(failed.value) == "verification exceeded 2.0 s"
        assert (await child.check(TASK, "print('x')"))["reward"] == 1.0

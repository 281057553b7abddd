"""The embedded SmolLM2 server: starts on loopback, answers chat completions, and is gone after."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

import pytest

from gym_operator.rollout.embedded import EmbeddedModelError, ServerSettings, start_embedded

pytestmark = pytest.mark.embedded

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with NO_PROXY.open(request, timeout=120) as answer:
        return json.load(answer)  # type: ignore[no-any-return]


def test_serves_chat_completions_on_loopback_and_stops_on_exit() -> None:
    with start_embedded("smollm2") as (base_url, model):
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with NO_PROXY.open(f"{base_url}/models", timeout=10) as answer:
            assert [m["id"] for m in json.load(answer)["data"]] == [model]
        answer = _post(
            f"{base_url}/chat/completions",
            {
                "model": model,
                "messages": [{"role": "user", "content": "What is 2 + 3?"}],
                "max_tokens": 24,
                "temperature": 0,
            },
        )
        assert answer["choices"][0]["message"]["content"].strip()  # type: ignore[index]
        assert answer["usage"]["completion_tokens"] > 0  # type: ignore[index]
    with pytest.raises(urllib.error.URLError):
        NO_PROXY.open(f"{base_url}/models", timeout=5)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(EmbeddedModelError, match="unknown embedded model 'llama-70b'"):
        with start_embedded("llama-70b"):
            pass


def test_a_server_that_does_not_come_up_in_time_is_stopped_with_its_log() -> None:
    impatient = ServerSettings(startup_timeout_seconds=0.05, stop_timeout_seconds=5)
    with pytest.raises(EmbeddedModelError, match=r"did not answer http://127") as caught:
        with start_embedded("smollm2", impatient):
            pass
    pid = int(re.search(r"\(pid (\d+)\)", str(caught.value)).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

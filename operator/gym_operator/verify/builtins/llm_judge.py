"""`llm_judge`: an OpenAI-compatible judge model scores the response with a prompt template.

Config:

- `baseURL` (default required): judge endpoint ending in /v1 (POST `<baseURL>/chat/completions`)
- `model` (default required): judge model name
- `apiKeyEnv` (default `JUDGE_API_KEY`): environment variable holding the judge API key (sent as
  Bearer; never logged)
- `mode` (default `equivalence`): `equivalence`: does the response agree with the reference answer;
  `score`: a 1-10 rating
- `promptTemplate` (default built-in): `equivalence`: placeholders `{question}`, `{first}`,
  `{second}`; `score`: `{question}`, `{response}`, `{reference}`
- `bothOrderings` (default `true`): equivalence: ask again with the two answers swapped (position
  bias check)
- `answerField` (default `expected_answer`): task field with the reference answer
- `equalLabel` / `notEqualLabel` (default `[[A=B]]` / `[[A!=B]]`): verdict markers the judge must
  print
- `timeoutSeconds` (default `60`): timeout of one judge call
- `temperature` (default `0`): judge sampling temperature

Reward (equivalence): 1.0 when every ordering asked says equal, else 0.0; components `equal`
(that same value) and `consistent` (1.0 when the orderings agree; 0.0 flags position bias).
Reward (score): the judge's `[[n]]` rating divided by 10. A judge that cannot be reached, answers
an error, or prints no verdict is a VerifierError (a failure row), never a reward.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import aiohttp

from gym_operator.verify.base import VerifierError, VerifyContext, VerifyResult, register

EQUIVALENCE_TEMPLATE = (
    "You compare two answers to the same question.\n\nQuestion:\n{question}\n\n"
    "Answer A:\n{first}\n\nAnswer B:\n{second}\n\n"
    "Do answers A and B give the same final answer? Reply with exactly one verdict: "
    "[[A=B]] if they are equivalent, [[A!=B]] if they are not."
)
SCORE_TEMPLATE = (
    "Rate the response to the question on a scale of 1 to 10.\n\nQuestion:\n{question}\n\n"
    "Reference answer:\n{reference}\n\nResponse:\n{response}\n\n"
    "End your reply with the rating in double brackets, e.g. [[7]]."
)
_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")


def question_text(task: dict[str, Any]) -> str:
    """The last user message of the task's input (or the input itself when it is text)."""
    params = task.get("responses_create_params") or {}
    prompt = params.get("input", task.get("question", ""))
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


async def ask_judge(config: dict[str, Any], prompt: str, http: aiohttp.ClientSession) -> str:
    """One judge call; VerifierError on any failure (the key never appears in messages)."""
    for key in ("baseURL", "model"):
        if not config.get(key):
            raise VerifierError(f"llm_judge needs config.{key}")
    headers = {}
    api_key = os.environ.get(config.get("apiKeyEnv", "JUDGE_API_KEY"), "")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = {
        "model": config["model"],
        "messages": [{"role": "user", "content": prompt}],
        "temperature": float(config.get("temperature", 0)),
    }
    url = f"{str(config['baseURL']).rstrip('/')}/chat/completions"
    timeout = aiohttp.ClientTimeout(total=float(config.get("timeoutSeconds", 60)))
    try:
        async with http.post(url, json=body, headers=headers, timeout=timeout) as resp:
            if resp.status != 200:
                raise VerifierError(f"judge answered HTTP {resp.status}")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise VerifierError(f"judge call failed: {type(exc).__name__}") from None
    try:
        return str(data["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise VerifierError("judge answer has no choices[0].message.content") from None


def render(template: str, **fields: str) -> str:
    """The prompt; VerifierError when the template names an unknown placeholder."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise VerifierError(
            f"config.promptTemplate is invalid ({type(exc).__name__}: {exc}); "
            f"placeholders: {sorted(fields)}"
        ) from None


def equivalence_verdict(reply: str, config: dict[str, Any]) -> bool:
    """True for the equal label, False for the not-equal label; VerifierError for neither."""
    equal = config.get("equalLabel", "[[A=B]]")
    not_equal = config.get("notEqualLabel", "[[A!=B]]")
    last_equal, last_not = reply.rfind(equal), reply.rfind(not_equal)
    if last_equal < 0 and last_not < 0:
        raise VerifierError("judge printed no verdict")
    return last_equal > last_not


async def _equivalence(
    task: dict[str, Any], text: str, config: dict[str, Any], http: aiohttp.ClientSession
) -> VerifyResult:
    field = config.get("answerField", "expected_answer")
    if task.get(field) is None:
        raise VerifierError(f"task has no {field!r} field")
    template = config.get("promptTemplate", EQUIVALENCE_TEMPLATE)
    question, reference = question_text(task), str(task[field])
    orders = [(reference, text)]
    if config.get("bothOrderings", True):
        orders.append((text, reference))
    prompts = [render(template, question=question, first=a, second=b) for a, b in orders]
    replies = await asyncio.gather(*(ask_judge(config, p, http) for p in prompts))
    verdicts = [equivalence_verdict(r, config) for r in replies]
    equal = 1.0 if all(verdicts) else 0.0
    consistent = 1.0 if len(set(verdicts)) == 1 else 0.0
    return VerifyResult(equal, {"equal": equal, "consistent": consistent}, {"verdicts": verdicts})


async def _score(
    task: dict[str, Any], text: str, config: dict[str, Any], http: aiohttp.ClientSession
) -> VerifyResult:
    template = config.get("promptTemplate", SCORE_TEMPLATE)
    reference = str(task.get(config.get("answerField", "expected_answer"), ""))
    prompt = render(template, question=question_text(task), response=text, reference=reference)
    found = _RATING.findall(await ask_judge(config, prompt, http))
    if not found:
        raise VerifierError("judge printed no [[rating]]")
    rating = float(found[-1])
    if not 1 <= rating <= 10:
        raise VerifierError(f"judge rating {rating} outside 1-10")
    return VerifyResult(rating / 10.0, {"rating": rating})


@register("llm_judge")
async def check_llm_judge(
    task: dict[str, Any], text: str, config: dict[str, Any], context: VerifyContext
) -> VerifyResult:
    """Ask the judge (both orderings for equivalence); judge failures are VerifierErrors."""
    mode = config.get("mode", "equivalence")
    if mode == "equivalence":
        return await _equivalence(task, text, config, context.http)
    if mode == "score":
        return await _score(task, text, config, context.http)
    raise VerifierError(f"config.mode {mode!r} is not one of ('equivalence', 'score')")

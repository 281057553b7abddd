"""`math` hybrid mode: an LLM judge asked only when the rule-based check says no or cannot read.

Enabled by the math config's `judge` object (keys below). The judge sees the question, the
reference and the end of the response (`maxResponseChars`) and must print the equality verdict
(llm_judge's equivalence prompt, both orderings by default: both must say equal). Each judge call
has its own timeout; `maxCalls` bounds the calls per verifier server (when it is spent the
rule-based reward stands, with `judge_asked` 0 and the reason in `verifier_details`). A judge that
cannot be reached, times out or prints no verdict makes the row a failure (422), never a reward.

- `baseURL`, `model` (required): the judge's OpenAI-compatible endpoint and model
- `apiKeyEnv` (default `JUDGE_API_KEY`): environment variable with the judge's API key
- `timeoutSeconds` (default `30`): timeout of one judge call
- `maxCalls` (default `100000`): judge calls per verifier server process (two per row asked
  with both orderings)
- `bothOrderings` (default `true`): ask again with the answers swapped
- `maxResponseChars` (default `2000`): how much of the response's end the judge sees
- `temperature`, `promptTemplate`, `equalLabel`, `notEqualLabel`: as for `llm_judge`
"""

from __future__ import annotations

import asyncio
from typing import Any

from gym_operator.verify.base import VerifierError, VerifyContext, register_fallback
from gym_operator.verify.builtins.llm_judge import (
    EQUIVALENCE_TEMPLATE,
    ask_judge,
    equivalence_verdict,
    question_text,
    render,
)

CALLS_KEY = "math_judge_calls"


def judge_config(config: dict[str, Any]) -> dict[str, Any] | None:
    """The `judge` object of the math config, None when hybrid mode is off."""
    judge = config.get("judge")
    if judge is None:
        return None
    if not isinstance(judge, dict):
        raise VerifierError("config.judge must be an object (baseURL, model, ...)")
    for key in ("baseURL", "model"):
        if not judge.get(key):
            raise VerifierError(f"config.judge needs {key}")
    return {"timeoutSeconds": 30, **judge}


async def ask(
    task: dict[str, Any],
    text: str,
    config: dict[str, Any],
    judge: dict[str, Any],
    context: VerifyContext,
) -> bool:
    """The judge's verdict (every ordering asked must say equal); VerifierError on failure."""
    reference = str(task.get(config.get("answerField", "expected_answer")))
    response = text[-int(judge.get("maxResponseChars", 2000)) :]
    orders = [(reference, response)]
    if judge.get("bothOrderings", True):
        orders.append((response, reference))
    template = judge.get("promptTemplate", EQUIVALENCE_TEMPLATE)
    question = question_text(task)
    prompts = [render(template, question=question, first=a, second=b) for a, b in orders]
    replies = await asyncio.gather(*(ask_judge(judge, p, context.http) for p in prompts))
    return all(equivalence_verdict(reply, judge) for reply in replies)


@register_fallback("math")
async def judge_fallback(
    task: dict[str, Any],
    text: str,
    config: dict[str, Any],
    context: VerifyContext,
    outcome: dict[str, Any],
) -> dict[str, Any]:
    """Ask the judge when the rule-based reward is below 1; record it in the components."""
    judge = judge_config(config)
    if judge is None:
        return outcome
    components = {**outcome["components"], "rule": outcome["reward"], "judge_asked": 0.0}
    details = dict(outcome["details"])
    if outcome["reward"] >= 1.0:
        return {**outcome, "components": components}
    limit = int(judge.get("maxCalls", 100_000))
    needed = 2 if judge.get("bothOrderings", True) else 1
    spent = context.state.get(CALLS_KEY, 0)
    if spent + needed > limit:
        details["judge"] = f"not asked: judge.maxCalls ({limit}) spent"
        return {**outcome, "components": components, "details": details}
    context.state[CALLS_KEY] = spent + needed
    try:
        equal = await ask(task, text, config, judge, context)
    except VerifierError as exc:
        raise VerifierError(f"hybrid judge failed: {exc}") from None
    reward = 1.0 if equal else 0.0
    components.update({"judge_asked": 1.0, "judge_equal": reward, "correct": reward})
    details["judge"] = "equal" if equal else "not equal"
    return {"reward": reward, "components": components, "details": details}

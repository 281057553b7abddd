"""`math`: the final answer as a grader reads it, compared across notations with math-verify.

Config (all optional):

- `answerField` (default `expected_answer`): task field with the reference answer (or a list of
  accepted answers)
- `extraction` (default `auto`): `auto`: last `\\boxed{}`, else last `#### n`, else the sentence
  after the last "the answer is" / "Final answer:", else the last line (math_extract; rejected
  candidates dropped); `boxed`: only `\\boxed{}`; `gsm8k`: only `#### n`
- `optionsField` (default `options`): task field with multiple-choice options (a list, A, B, ...
  in order, or a {letter: text} object): the letter and the option's text are one answer
- `timeoutSeconds` (default `5`): math-verify's parsing and comparison timeout
- `judge` (default none): hybrid mode, an LLM judge asked only when the rules say no (math_hybrid)

Reward: 1.0 when the extracted answer equals the reference (0.5 = 1/2 = \\frac{1}{2}, 1 234 = 1234,
"one half" = 1/2, x <= 3 = (-inf, 3], <1, 2> = (1, 2), "5 cm" = 5), else 0.0; an empty or
unparseable answer is 0.0. Components: `correct` (the reward) and `format` (1.0 when the answer
was marked by `\\boxed{}` or `####`); with a judge also `rule`, `judge_asked`, `judge_equal`.
A task without a parseable reference answer is a VerifierError.
"""

from __future__ import annotations

import threading
from typing import Any

from gym_operator.verify.base import VerifyResult, register
from gym_operator.verify.builtins.math_grading import grade


def _timeout(config: dict[str, Any]) -> int | None:
    """math-verify's signal-based timeout works only on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return int(config.get("timeoutSeconds", 5))


@register("math")
def check_math(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 when the response's final answer equals the reference answer, else 0.0."""
    result = grade(task, text, config, _timeout(config))
    reward = 1.0 if result.correct else 0.0
    return VerifyResult(
        reward=reward,
        components={"correct": reward, "format": 1.0 if result.marked else 0.0},
        details={"extracted": result.extracted},
    )

"""The built-in verifiers; importing this package registers them."""

from gym_operator.verify.builtins import (  # noqa: F401
    code_execution,
    exact_match,
    instruction_following,
    json_schema,
    llm_judge,
    math,
    math_hybrid,
    mcqa,
    regex,
    tools,
)

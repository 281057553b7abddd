"""Tools of the built-in verifiers, served at `POST /<tool_name>` for multi-turn tasks.

- `math`; `calculator`; `expression`: arithmetic with + - * / // % ** and parentheses; `{"result":
  "..."}` or `{"error": "..."}`; exponents above 1000 and integers above 4000 digits are refused
  before they are computed
- `code_execution`; `run_python`; `code`, `stdin`?; `{"exit_code", "stdout", "stderr"}` (sandboxed,
  as the verifier's runs)

Every tool call is counted in the session's state under `tool_calls`.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

from gym_operator.verify.base import register_tool
from gym_operator.verify.builtins.code_execution import limits_from
from gym_operator.verify.sandbox import run_python

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
MAX_RESULT_DIGITS = 4000
"""Integers above this size are refused before they are computed (no GIL held for seconds)."""
_MAX_RESULT_BITS = int(MAX_RESULT_DIGITS * math.log2(10))


def evaluate(node: ast.AST) -> float | int:
    """Evaluate an arithmetic expression tree (numbers and the operators above only)."""
    if isinstance(node, ast.Expression):
        return evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = evaluate(node.left), evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](evaluate(node.operand))  # type: ignore[no-any-return]
    raise ValueError(f"unsupported expression element {type(node).__name__}")


def _bits(value: float | int) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_power(base: float | int, exponent: float | int) -> None:
    """Refuse a power whose result would be huge, before computing it."""
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError("exponent too large")
    if isinstance(exponent, int) and _bits(base) * abs(exponent) > _MAX_RESULT_BITS:
        raise ValueError(f"result would exceed {MAX_RESULT_DIGITS} digits")


def _bounded(value: float | int) -> float | int:
    if _bits(value) > _MAX_RESULT_BITS:
        raise ValueError(f"result exceeds {MAX_RESULT_DIGITS} digits")
    return value


def _count(state: dict[str, Any]) -> None:
    state["tool_calls"] = int(state.get("tool_calls", 0)) + 1


@register_tool("math", "calculator")
def calculator(arguments: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> dict:
    """Evaluate `arguments.expression`; errors are answers the model can read, not failures."""
    _count(state)
    expression = str(arguments.get("expression", ""))
    if len(expression) > MAX_EXPRESSION_CHARS:
        return {"error": f"expression longer than {MAX_EXPRESSION_CHARS} characters"}
    try:
        return {"result": str(evaluate(ast.parse(expression, mode="eval")))}
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


@register_tool("code_execution", "run_python")
def run_python_tool(
    arguments: dict[str, Any], state: dict[str, Any], config: dict[str, Any]
) -> dict:
    """Run `arguments.code` in the sandbox and return its exit code and output."""
    _count(state)
    allow = bool(config.get("allowUnsandboxed", False))
    result = run_python(
        str(arguments.get("code", "")), str(arguments.get("stdin", "")), limits_from(config), allow
    )
    return {
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "reason": result.reason,
    }

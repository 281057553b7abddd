"""The built-in verifiers by name; a built-in's modules are imported (registering it) on first use.

The names are the RolloutJob's `BuiltinVerifier` values. Each built-in lives in the module of
its name; `EXTRA_MODULES` adds the modules that register a built-in's tools or second opinion.
Nothing is imported for a built-in that is not asked for (math alone brings in sympy and
math-verify).
"""

from __future__ import annotations

import importlib
from functools import cache

from gym_operator.api.rolloutjob import BUILTIN_VERIFIERS

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "math": ("math_hybrid", "tools"),
    "code_execution": ("tools",),
}
MODULES: dict[str, tuple[str, ...]] = {
    name: tuple(f"{__name__}.{module}" for module in (name, *EXTRA_MODULES.get(name, ())))
    for name in BUILTIN_VERIFIERS
}
"""The modules to import for each built-in, by name."""


@cache
def load(name: str) -> None:
    """Import the modules of the built-in `name` (once); nothing for an unknown name."""
    for module in MODULES.get(name, ()):
        importlib.import_module(module)

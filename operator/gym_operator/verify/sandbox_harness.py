"""Assert-style tests run apart from the program they test: two sandboxes talking over pipes.

Standard library only (and `sandbox_wire.py` beside it, the plain data on the pipes); run inside
the sandbox as `harness.py solution REQ RESP` (the model's program: it runs `main.py`, then
answers requests for its names, calls and attributes) or as `harness.py tests REQ RESP RESULTS`
(the task's tests: `tests.py`, where every name the tests do not define is fetched from the
solution process). The verdict of each test is written by the
tests' process to RESULTS, a descriptor the solution's process never holds; values cross between
the two only as plain data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set,
frozenset; exact types), anything else as an opaque handle with no truth value and no equality,
so an exit, a patched builtin or an object that claims to equal everything cannot pass a test.
The server also parses the tests (`test_labels`) to know how many verdicts to expect.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import os
import sys
import types
from typing import Any


def _load_wire() -> types.ModuleType:
    """`sandbox_wire.py` beside this file, loaded by its path: in the sandbox this file runs as
    a script whose interpreter cannot import gym_operator (only this directory is readable)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_wire.py")
    spec = importlib.util.spec_from_file_location("gymops_sandbox_wire", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __package__:
    from gym_operator.verify import sandbox_wire as wire
else:
    wire = _load_wire()
LineReader, decode, encode, send = wire.LineReader, wire.decode, wire.encode, wire.send
MALFORMED, MAX_ITEMS = wire.MALFORMED, wire.MAX_ITEMS

SETUP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
SETUP += (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Pass, ast.Global, ast.Nonlocal)
_ITERATORS = (types.GeneratorType, map, filter, zip, enumerate, reversed)


def test_labels(source: str) -> list[str]:
    """One label per test: each top-level statement that is not setup, then each `test*` function.

    SyntaxError when the tests do not parse.
    """
    tree = ast.parse(source)
    labels = [
        ast.unparse(node).splitlines()[0][:120]
        for node in tree.body
        if not isinstance(node, SETUP) and not _is_docstring(node)
    ]
    labels += [f"{node.name}()" for node in tree.body if _is_test_function(node)]
    return labels


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _is_test_function(node: ast.stmt) -> bool:
    return isinstance(node, ast.FunctionDef) and node.name.startswith("test")


# --- the solution's side (runs the model's program; nothing here is trusted by the tests) -------


class SolutionServer:
    """The program's globals, served: `get` a name, `call` or `attr` a handle."""

    def __init__(self, namespace: dict[str, Any], failure: str) -> None:
        self.namespace = namespace
        self.failure = failure
        self.objects: list[Any] = []
        self.arguments: list[Any] = []

    def handle(self, value: Any) -> list[Any]:
        if isinstance(value, _ITERATORS):
            items = []
            for item in value:
                items.append(item)
                if len(items) > MAX_ITEMS:
                    raise ValueError("iterator longer than the limit")
            return encode(items, self.handle)
        self.objects.append(value)
        return ["h", len(self.objects) - 1]

    def answer(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        if op == "names":
            return sorted(name for name in self.namespace if not name.startswith("__"))
        if op == "get":
            name = request["name"]
            if name not in self.namespace:
                where = f" (the program failed: {self.failure})" if self.failure else ""
                raise NameError(f"name {name!r} is not defined by the program{where}")
            return self.namespace[name]
        target = self.objects[int(request["h"])]
        if op == "attr":
            return getattr(target, request["name"])
        args = [decode(a, self.objects.__getitem__) for a in request["args"]]
        kwargs = {k: decode(v, self.objects.__getitem__) for k, v in request["kwargs"]}
        self.arguments = [*args, *kwargs.values()]
        return target(*args, **kwargs)

    def serve(self, requests: int, answers: int) -> None:
        reader = LineReader(requests)
        while True:
            try:
                request = reader.read()
            except EOFError:
                return
            self.arguments = []
            try:
                reply = {"ok": encode(self.answer(request), self.handle)}
                # lists, dicts and sets passed in go back as they are now: changed in place
                reply["after"] = [encode(a, self.handle) for a in self.arguments]
            except BaseException as exc:  # the tests see the program's exception, by name
                reply = {"raise": [type(exc).__name__, str(exc)[:1000]]}
            send(answers, reply)


def run_solution(requests: int, answers: int) -> None:
    """Run main.py, then serve its names until the tests' side closes the pipe."""
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": "main.py"}
    namespace["__builtins__"] = builtins
    failure = ""
    try:
        with open("main.py", encoding="utf-8") as source:
            code = compile(source.read(), "main.py", "exec")
        exec(code, namespace)
    except SystemExit:
        pass  # the tests still run against whatever the program defined
    except BaseException as exc:
        failure = f"{type(exc).__name__}: {exc}"[:300]
    SolutionServer(namespace, failure).serve(requests, answers)


# --- the tests' side (the task's trusted tests; values from the solution are plain data) ---------


class SolutionGone(Exception):
    """The solution's process ended or answered nonsense during a call."""


class SolutionError(Exception):
    """The solution raised an exception that is not one of Python's built-in exceptions."""


class Remote:
    """An object of the solution: callable, with attributes; no truth value, no equality."""

    __slots__ = ("_link", "_number")

    def __init__(self, link: Link, number: int) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_number", number)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        encoded = [self._link.encode(a) for a in args]
        named = [[k, self._link.encode(v)] for k, v in kwargs.items()]
        request = {"op": "call", "h": self._number, "args": encoded, "kwargs": named}
        return self._link.ask(request, [*args, *kwargs.values()])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._link.ask({"op": "attr", "h": self._number, "name": name})

    def __bool__(self) -> bool:
        raise TypeError("an object of the solution that is not plain data has no truth value")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<object #{self._number} of the solution>"


class Link:
    """The tests' end of the pipes to the solution."""

    def __init__(self, requests: int, answers: int) -> None:
        self.requests = requests
        self.reader = LineReader(answers)
        self.remotes: dict[int, Remote] = {}
        self.gone = ""

    def remote(self, number: int) -> Remote:
        return self.remotes.setdefault(number, Remote(self, number))

    def encode(self, value: Any) -> list[Any]:
        def handle(item: Any) -> list[Any]:
            if isinstance(item, Remote) and item._link is self:
                return ["h", item._number]
            raise TypeError(f"cannot pass a {type(item).__name__} to the solution")

        return encode(value, handle)

    def ask(self, request: dict[str, Any], arguments: list[Any] | None = None) -> Any:
        if self.gone:
            raise SolutionGone(self.gone)
        try:
            send(self.requests, request)
            reply = self.reader.read()
            if isinstance(reply, dict) and "ok" in reply:
                value = decode(reply["ok"], self.remote)
                after = [decode(a, self.remote) for a in reply.get("after", [])]
                for original, changed in zip(arguments or [], after, strict=False):
                    _update_in_place(original, changed)
                return value
            name, message = reply["raise"]
        except (EOFError, OSError) as exc:
            self.gone = f"the solution's process ended during a call ({type(exc).__name__})"
            raise SolutionGone(self.gone) from None
        except MALFORMED as exc:
            self.gone = f"the solution answered malformed data: {exc}"[:300]
            raise SolutionGone(self.gone) from None
        raise _rebuilt(str(name), str(message))


def _update_in_place(original: Any, changed: Any) -> None:
    """Make a list, dict or set the tests passed look as the solution left it."""
    if type(original) is not type(changed) or original == changed:
        return
    if type(original) is list:
        original[:] = changed
    elif type(original) in (dict, set):
        original.clear()
        original.update(changed)


def _rebuilt(name: str, message: str) -> Exception:
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == "builtins":
        try:
            return kind(message)
        except Exception:  # an exception class whose constructor needs other arguments
            pass
    return SolutionError(f"{name}: {message}")


class TestGlobals(dict):  # type: ignore[type-arg]
    """The tests' globals: a name they do not define is fetched from the solution."""

    def __init__(self, link: Link) -> None:
        super().__init__(__name__="__main__", __builtins__=builtins)
        self.link = link
        self.names: set[str] | None = None

    def __missing__(self, name: str) -> Any:
        if name.startswith("__"):
            raise KeyError(name)
        if hasattr(builtins, name):
            if name in self._solution_names():
                raise SolutionError(
                    f"the program redefines {name!r}, a builtin the tests use (they use Python's)"
                )
            raise KeyError(name)
        try:
            value = self.link.ask({"op": "get", "name": name})
        except NameError:
            raise KeyError(name) from None
        self[name] = value
        return value

    def _solution_names(self) -> set[str]:
        if self.names is None:
            names = self.link.ask({"op": "names"})
            self.names = {n for n in names if type(n) is str} if type(names) is list else set()
        return self.names


def run_tests(requests: int, answers: int, results: int) -> None:
    """Run tests.py statement by statement, one verdict per test on `results`."""
    with open("tests.py", encoding="utf-8") as source:
        tree = ast.parse(source.read())
    namespace = TestGlobals(Link(requests, answers))
    number = 0
    for node in tree.body:
        is_test = not isinstance(node, SETUP) and not _is_docstring(node)
        error = _execute(ast.Module(body=[node], type_ignores=[]), namespace)
        if is_test:
            send(results, {"test": number, "ok": error is None, "reason": error or ""})
            number += 1
        elif error is not None:
            send(results, {"setup": ast.unparse(node)[:120], "reason": error})
            return
    for node in tree.body:
        if _is_test_function(node):
            call = ast.Expr(ast.Call(ast.Name(node.name, ast.Load()), [], []))
            error = _execute(ast.fix_missing_locations(ast.Module([call], [])), namespace)
            send(results, {"test": number, "ok": error is None, "reason": error or ""})
            number += 1


def _execute(module: ast.Module, namespace: TestGlobals) -> str | None:
    try:
        exec(compile(module, "tests.py", "exec"), namespace)
    except BaseException as exc:  # every failure of a test is its verdict, never the harness's end
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def main(argv: list[str]) -> None:
    """`solution REQ RESP` or `tests REQ RESP RESULTS`."""
    role, fds = argv[1], [int(x) for x in argv[2:]]
    if role == "solution":
        run_solution(*fds)
    else:
        run_tests(*fds)


if __name__ == "__main__":
    main(sys.argv)

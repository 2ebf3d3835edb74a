"""Naming the function of a job at enqueue, and finding it again, safely, in a worker.

A payload names its function by dotted path. RQ imports whatever path a payload names and falls
back to builtins, so anyone who can write to Redis can make a worker call `os.system`. A worker
here imports only modules outside the standard library (unless allowed by prefix), never calls
a builtin, and can be limited to an allow-list of module prefixes.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any

from oxanus_sync.rq.exceptions import UnsafeCallableError

_STDLIB = frozenset(sys.stdlib_module_names)


def callable_name(func: Any, *, what: str = "job function") -> str:
    """Return the dotted path that finds `func` again, or raise ValueError saying why none does."""
    if isinstance(func, str):
        if "." not in func:
            raise ValueError(
                f"invalid {what} {func!r}: give a dotted path such as 'myapp.tasks.send_email'"
            )
        return _check_not_standard(func, what)
    if not callable(func):
        raise ValueError(f"invalid {what} {func!r}: expected a function or a dotted path")

    target = func.__func__ if inspect.ismethod(func) else func
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if inspect.ismethod(func) and not inspect.isclass(func.__self__):
        raise ValueError(
            f"{what} {func!r} is a method bound to an instance, which JSON cannot store; "
            "enqueue a module-level function that builds the instance"
        )
    if module is None or qualname is None:
        raise ValueError(f"{what} {func!r} has no importable name; enqueue a module-level function")
    if module == "__main__":
        raise ValueError(
            f"{what} {qualname} is defined in __main__, which a worker cannot import; move it "
            "to a module"
        )
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(
            f"{what} {module}.{qualname} is a lambda or a nested function, which a worker "
            "cannot import; define it at module level"
        )
    return _check_not_standard(f"{module}.{qualname}", what)


def _check_not_standard(path: str, what: str) -> str:
    # Workers reject these anyway, so reject them here, where the caller sees the error.
    top = path.partition(".")[0]
    if top == "builtins" or top in _STDLIB:
        raise ValueError(
            f"{what} {path!r} is a builtin or in the standard library, which workers refuse to "
            "call; wrap the call in a function of your own module"
        )
    return path


class FunctionPolicy:
    """The rule for the callables a worker may import and call, by their defining module.

    Builtins are always rejected. Standard-library modules are rejected unless listed in
    `allowed_modules` by name (for example "json"). With `allowed_modules`, every other module
    must also start with one of its prefixes.
    """

    def __init__(self, allowed_modules: Sequence[str] | None = None) -> None:
        self.allowed_modules = tuple(allowed_modules) if allowed_modules is not None else None

    def resolve(self, path: str) -> Callable[..., Any]:
        """Import and return the callable at `path`, or raise `UnsafeCallableError`."""
        module_name, attributes = self._split(path)
        module = importlib.import_module(module_name)

        target: Any = module
        for attribute in attributes:
            target = getattr(target, attribute)
        if any(target is value for value in vars(builtins).values()):
            raise UnsafeCallableError(f"rejected builtin {path!r} named by a job payload")
        # A module of the application may re-export a standard-library function.
        defined_in = getattr(target, "__module__", None)
        if isinstance(defined_in, str):
            self._check_module(path, defined_in)
        if not callable(target):
            raise UnsafeCallableError(f"{path!r} named by a job payload is not callable")
        return target  # type: ignore[no-any-return]

    def _split(self, path: str) -> tuple[str, list[str]]:
        parts = path.split(".")
        # The longest prefix that is an importable module; the rest are attributes.
        for end in range(len(parts) - 1, 0, -1):
            module_name = ".".join(parts[:end])
            self._check_module(path, module_name)
            try:
                importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name is not None and module_name.startswith(error.name):
                    continue
                raise
            return module_name, parts[end:]
        raise UnsafeCallableError(f"no importable module in {path!r} named by a job payload")

    def _check_module(self, path: str, module_name: str) -> None:
        top = module_name.partition(".")[0]
        allowed = self.allowed_modules
        if allowed is not None and any(_has_prefix(module_name, prefix) for prefix in allowed):
            return
        if top in _STDLIB or top == "builtins":
            raise UnsafeCallableError(
                f"rejected {path!r} named by a job payload: module {top!r} is in the "
                "standard library; wrap the call in a function of your own module"
            )
        if allowed is not None:
            raise UnsafeCallableError(
                f"rejected {path!r} named by a job payload: module {module_name!r} is "
                f"outside the allowed prefixes {list(allowed)}"
            )


def _has_prefix(module_name: str, prefix: str) -> bool:
    return module_name == prefix or module_name.startswith(prefix.rstrip(".") + ".")

"""Stage functions: found by import path, typed by their annotations, described for the wire."""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

from zeropipe.codecs import FieldSpec, is_message, spec_of

from .errors import PipelineError

#: The module name a script's functions are loaded under in a worker (a script's own
#: ``if __name__ == "__main__":`` block must not run there).
SCRIPT_MODULE = "__zeropipe_main__"

_ITERABLES = (
    cabc.Iterable,
    cabc.Iterator,
    cabc.Generator,
    cabc.Collection,
    cabc.Sequence,
    list,
    tuple,
)


def path_of(fn: Callable[..., Any], role: str) -> str:
    """The ``module:qualname`` a worker imports ``fn`` by; refuses what it could not import.

    A function of a script run as ``__main__`` is named by the script's file path."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or not callable(fn):
        raise PipelineError(f"the {role} {fn!r} is not a function with an import path")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise PipelineError(
            f"the {role} {qualname} is a lambda or a nested function: workers import stage "
            "functions by path (module:function), so define it at the top level of a module"
        )
    if module in ("__main__", SCRIPT_MODULE):
        main = sys.modules.get(module)
        file = getattr(main, "__file__", None)
        if not file:
            raise PipelineError(
                f"the {role} {qualname} is defined in an interactive session: workers import "
                "stage functions by path, so move it into a module"
            )
        module = os.path.abspath(file)
    path = f"{module}:{qualname}"
    if resolve(path, role) is not fn:
        raise PipelineError(f"the {role} {path} does not import back to the same function")
    return path


def resolve(path: str, role: str = "function") -> Callable[..., Any]:
    """Imports ``pkg.mod:attr.attr`` (or ``/path/to/script.py:attr``) and returns it."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise PipelineError(f"the {role} {path!r} is not an import path of the form pkg.mod:fn")
    try:
        module = _import(module_name)
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(f"the {role} {path}: cannot import {module_name}: {exc!r}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PipelineError(f"the {role} {path}: {module_name} has no {attr}") from None
    if not callable(obj):
        raise PipelineError(f"the {role} {path} is not callable")
    return typing.cast(Callable[..., Any], obj)


def _import(module_name: str) -> types.ModuleType:
    if not module_name.endswith(".py"):
        return importlib.import_module(module_name)
    main = sys.modules.get("__main__")
    if os.path.abspath(getattr(main, "__file__", "") or "") == os.path.abspath(module_name):
        assert main is not None
        return main
    loaded = sys.modules.get(SCRIPT_MODULE)
    if loaded is not None and getattr(loaded, "__file__", None) == module_name:
        return loaded
    if not os.path.exists(module_name):
        raise PipelineError(f"no such script: {module_name}")
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, module_name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = module
    spec.loader.exec_module(module)
    return module


def _hints(fn: Callable[..., Any], role: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:
        raise PipelineError(f"the {role} {_name(fn)}: cannot read its annotations: {exc}") from exc


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))


def _positional(fn: Callable[..., Any], role: str) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"the {role} {_name(fn)} has no signature: {exc}") from exc
    return [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]


def element_type(t: Any) -> Any:
    """``T`` of ``Iterable[T]`` (and Iterator, Generator, Sequence, list...); Any otherwise."""
    origin = typing.get_origin(t)
    if origin in _ITERABLES and (args := typing.get_args(t)):
        return args[0]
    return Any


def source_type(fn: Callable[..., Any], nargs: int) -> Any:
    """What a source yields, from its return annotation (``Iterable[T]`` and the like)."""
    _check_arity(fn, "source", nargs)
    ret = _hints(fn, "source").get("return", Any)
    if ret is not Any and typing.get_origin(ret) not in _ITERABLES and ret not in _ITERABLES:
        raise PipelineError(
            f"the source {_name(fn)} returns {describe(ret)}: a source returns an iterable "
            "of tasks (annotate it Iterator[T] or Iterable[T])"
        )
    return element_type(ret)


def map_types(fn: Callable[..., Any]) -> tuple[Any, Any]:
    """(input, output) of a map stage: its one argument's and its return annotation."""
    params = _check_arity(fn, "map stage", 1)
    hints = _hints(fn, "map stage")
    return hints.get(params[0].name, Any), hints.get("return", Any)


def sink_type(fn: Callable[..., Any]) -> tuple[Any, bool]:
    """(what the sink takes, whether it takes the whole stream as one iterable)."""
    params = _check_arity(fn, "sink", 1)
    t = _hints(fn, "sink").get(params[0].name, Any)
    if typing.get_origin(t) in (cabc.Iterable, cabc.Iterator):
        return element_type(t), True
    return t, False


def hook_check(fn: Callable[..., Any], role: str) -> None:
    _check_arity(fn, role, 0)


def _check_arity(fn: Callable[..., Any], role: str, n: int) -> list[inspect.Parameter]:
    params = _positional(fn, role)
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    if len(required) > n or (len(params) < n and not variadic):
        raise PipelineError(
            f"the {role} {_name(fn)} must take {n} positional argument{'s' * (n != 1)}, "
            f"its signature is {inspect.signature(fn)}"
        )
    return params


def compatible(produced: Any, taken: Any) -> bool:
    """Whether values annotated ``produced`` may be passed where ``taken`` is expected."""
    if taken in (Any, object) or produced is Any or produced == taken:
        return True
    if _is_union(taken):
        return any(compatible(produced, t) for t in typing.get_args(taken))
    if _is_union(produced):
        return all(compatible(p, taken) for p in typing.get_args(produced))
    if produced is type(None) or taken is type(None):
        return False
    if taken is float and produced is int:
        return True
    p_origin, t_origin = typing.get_origin(produced), typing.get_origin(taken)
    if p_origin is None and t_origin is None:
        return isinstance(produced, type) and isinstance(taken, type) and _sub(produced, taken)
    p_cls, t_cls = p_origin or produced, t_origin or taken
    if not (isinstance(p_cls, type) and isinstance(t_cls, type) and _sub(p_cls, t_cls)):
        return False
    p_args, t_args = typing.get_args(produced), typing.get_args(taken)
    if not p_args or not t_args:
        return True
    if len(p_args) != len(t_args):
        return t_cls is tuple and ... in t_args and all(compatible(p, t_args[0]) for p in p_args)
    return all(compatible(p, t) for p, t in zip(p_args, t_args, strict=True))


def _sub(a: type, b: type) -> bool:
    try:
        return issubclass(a, b)
    except TypeError:
        return False


def _is_union(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType)


def describe(t: Any) -> str:
    """A short readable name of an annotation."""
    if t is Any:
        return "Any"
    if is_message(t):
        return spec_of(t).full_name
    if isinstance(t, type) and typing.get_origin(t) is None:
        return t.__qualname__
    return repr(t).replace("typing.", "")


def schema_text(t: Any) -> str:
    """The canonical text of a stage edge's type, compared by head and workers (and written
    by hand by a worker in another language: see docs/pipeline-protocol.md)."""
    if not is_message(t):
        return describe(t)
    seen: dict[str, str] = {}
    _message_text(t, seen)
    return "; ".join(seen[name] for name in sorted(seen))


def _message_text(cls: type, seen: dict[str, str]) -> None:
    spec = spec_of(cls)
    if spec.full_name in seen:
        return
    seen[spec.full_name] = ""
    seen[spec.full_name] = (
        f"{spec.full_name} {{" + ", ".join(_field_text(f, seen) for f in spec.fields) + "}"
    )


def _field_text(f: FieldSpec, seen: dict[str, str]) -> str:
    kind = f.kind
    if f.type is not None:
        if is_message(f.type):
            _message_text(f.type, seen)
            kind = spec_of(f.type).full_name
        else:
            name = getattr(f.type, "__zeropipe_enum__", None) or f.type.__qualname__
            kind = f"{f.kind} {name}"
    if f.key_kind is not None:
        kind = f"map<{f.key_kind}, {kind}>"
    elif f.repeated:
        kind = f"list<{kind}>"
    if f.optional:
        kind = f"optional<{kind}>"
    return f"{f.number} {f.name} {kind}"


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]

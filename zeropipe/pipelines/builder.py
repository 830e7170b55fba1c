"""Declaring a pipeline: the builder, the file format, and the checked plan both produce."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zeropipe.codecs import is_message

from .errors import PipelineError
from .payload import Edge, edge_for
from .types import (
    compatible,
    describe,
    hook_check,
    map_types,
    path_of,
    resolve,
    schema_text,
    sink_type,
    source_type,
)

if TYPE_CHECKING:
    from .head import RunResult

Fn = Callable[..., Any] | str
_ENDPOINT = re.compile(r"^(tcp://(\*|[\w.\-]+|\[[0-9a-fA-F:.]+\]):(\*|\d{1,5})|ipc://.+)$")


@dataclass
class MapStage:
    """One map stage as declared (functions, or their import paths)."""

    fn: Fn
    name: str = ""
    workers: int | None = None
    batch: int | str = "auto"
    timeout: float | None = None
    max_attempts: int = 3
    credit: int | None = None
    init: Fn | None = None
    close: Fn | None = None
    min_workers: int = 0


@dataclass
class StagePlan:
    """A map stage, checked: its function's path, types and the edges in and out."""

    name: str
    fn: Callable[[Any], Any]
    path: str
    inbound: Edge
    outbound: Edge
    schema: str
    workers: int
    batch: int | None  # None: automatic
    timeout: float | None
    max_attempts: int
    credit: int | None
    init: tuple[Callable[[], Any], str] | None
    close: tuple[Callable[[], Any], str] | None
    min_workers: int = 0

    def ready(self) -> dict[str, Any]:
        """The part of READY that describes this stage to a worker."""
        return {
            "stage": self.name,
            "fn": self.path,
            "schema": self.schema,
            "init": self.init[1] if self.init else None,
            "close": self.close[1] if self.close else None,
            "timeout": self.timeout,
            "in": self.inbound.ready(),
            "out": self.outbound.ready(),
        }


@dataclass
class Plan:
    """A pipeline that passed every check that can be made before a process starts."""

    name: str
    source: Callable[..., Iterable[Any]]
    source_args: tuple[Any, ...]
    source_kwargs: dict[str, Any]
    source_total: int | None
    stages: list[StagePlan]
    sink: Callable[[Any], Any] | None
    sink_stream: bool
    sink_edge_type: Any
    dead_letter: Callable[[Any], Any] | None
    ordered: bool
    acks: bool
    bind: str | None
    heartbeat: float
    heartbeat_timeout: float
    linger: float
    max_batch_bytes: int
    max_message_bytes: int
    curve_secret_key: str | None
    curve_public_key: str | None
    curve_clients: str | None
    paths: list[str] = field(default_factory=list)  # sys.path entries workers need

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)


class Pipeline:
    """A ventilator, map stages run by worker processes, and a sink::

        result = (
            Pipeline("squares")
            .source(numbers, args=(1000,))
            .map(square, workers=4)
            .sink(total)
            .run()
        )

    Functions are shipped to workers by import path (``pkg.mod:fn``), so they must be
    top-level functions of a module (or of the script being run). Stage types come from
    their annotations and are checked by :meth:`validate` (``run`` calls it).
    """

    def __init__(
        self,
        name: str,
        *,
        codec: str | None = None,
        ordered: bool = False,
        acks: bool = True,
        bind: str | None = None,
        heartbeat: float = 0.5,
        heartbeat_timeout: float = 5.0,
        linger: float = 0.002,
        max_batch_bytes: int = 1 << 20,
        max_message_bytes: int = 256 << 20,
        curve_secret_key: str | None = None,
        curve_public_key: str | None = None,
        curve_clients: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]{1,100}", name):
            raise PipelineError(
                f"a pipeline name is 1-100 letters, digits, '_', '.', '-': {name!r}"
            )
        self.name = name
        self.codec = codec
        self.ordered = ordered
        self.acks = acks
        self.bind = bind
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.linger = linger
        self.max_batch_bytes = max_batch_bytes
        self.max_message_bytes = max_message_bytes
        self.curve_secret_key = curve_secret_key
        self.curve_public_key = curve_public_key
        self.curve_clients = curve_clients
        self._source: tuple[Fn, tuple[Any, ...], dict[str, Any]] | None = None
        self._total: int | None = None
        self._maps: list[MapStage] = []
        self._sink: Fn | None = None
        self._dead_letter: Fn | None = None
        self.paths: list[str] = []

    def source(
        self,
        fn: Fn,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        total: int | None = None,
    ) -> Pipeline:
        """The ventilator: ``fn(*args, **kwargs)`` returns an iterable of tasks, read lazily.
        ``total``: how many it will yield, for the progress bar's ETA (default: its ``len()``
        if it has one)."""
        self._source = (fn, tuple(args), dict(kwargs or {}))
        if total is not None:
            _positive(total, "total", f"pipeline {self.name}, source", zero=True)
        self._total = total
        return self

    def map(
        self,
        fn: Fn,
        *,
        workers: int | None = None,
        name: str | None = None,
        batch: int | str = "auto",
        timeout: float | None = None,
        max_attempts: int = 3,
        credit: int | None = None,
        init: Fn | None = None,
        close: Fn | None = None,
        min_workers: int = 0,
    ) -> Pipeline:
        """A stage run by ``workers`` processes (default: one per CPU): ``fn(task) -> result``.

        ``batch``: tasks per message ("auto" sizes batches from measured task times);
        ``timeout``: seconds one task may run before its worker is replaced and the attempt
        counted; ``max_attempts``: raises or worker deaths before a task goes to the dead
        letters; ``credit``: most tasks one worker holds (default: two batches, or about
        20 ms of work up to 1024 tasks when that is more);
        ``init``/``close``: called once in each worker process before its first task and
        after its last; ``min_workers``: no task is sent before this many workers joined the
        stage (a balanced start, or a wait for remote workers)."""
        self._maps.append(
            MapStage(
                fn,
                name or "",
                workers,
                batch,
                timeout,
                max_attempts,
                credit,
                init,
                close,
                min_workers,
            )
        )
        return self

    def sink(self, fn: Fn) -> Pipeline:
        """Where results go: ``fn(result)`` per result, or ``fn(results: Iterable[T])`` called
        once with the stream (its return value becomes ``RunResult.value``). Without a sink,
        ``run()`` returns the results in ``RunResult.results``."""
        self._sink = fn
        return self

    def set_workers(self, workers: int) -> Pipeline:
        """Sets the number of local worker processes of every map stage."""
        for stage in self._maps:
            stage.workers = workers
        return self

    def dead_letter(self, fn: Fn) -> Pipeline:
        """Called with each :class:`DeadLetter` (a task that failed ``max_attempts`` times)."""
        self._dead_letter = fn
        return self

    # -- checking -------------------------------------------------------------

    def validate(self) -> Plan:
        """Checks functions, types, codecs and the endpoint; raises :class:`PipelineError`."""
        if self._source is None:
            raise PipelineError(f"pipeline {self.name}: no source")
        if not self._maps:
            raise PipelineError(f"pipeline {self.name}: no map stage")
        for path in self.paths:
            if path not in sys.path:
                sys.path.insert(0, path)
        src_fn, args, kwargs = self._source
        source = _function(src_fn, "source")
        produced = source_type(source, len(args))
        producer = f"the source {getattr(source, '__qualname__', source)}"
        stages: list[StagePlan] = []
        names: set[str] = set()
        for index, decl in enumerate(self._maps):
            stage = self._stage(decl, index, produced, producer, names)
            stages.append(stage)
            produced = map_types(stage.fn)[1]
            producer = f"stage {stage.name}"
        sink = _function(self._sink, "sink") if self._sink is not None else None
        stream = False
        if sink is not None:
            taken, stream = sink_type(sink)
            if not compatible(produced, taken):
                raise PipelineError(
                    f"pipeline {self.name}: the sink {sink.__qualname__} takes "
                    f"{describe(taken)} but {producer} returns {describe(produced)}"
                )
        dead = _function(self._dead_letter, "dead-letter handler") if self._dead_letter else None
        if self.ordered and not self.acks:
            raise PipelineError(
                f"pipeline {self.name}: ordered=True needs acks (without them a task lost with "
                "its worker would hold back every later result)"
            )
        self._check_bind()
        self._check_curve()
        return Plan(
            name=self.name,
            source=source,
            source_args=args,
            source_kwargs=kwargs,
            source_total=self._total,
            stages=stages,
            sink=sink,
            sink_stream=stream,
            sink_edge_type=produced,
            dead_letter=dead,
            ordered=self.ordered,
            acks=self.acks,
            bind=self.bind,
            heartbeat=float(self.heartbeat),
            heartbeat_timeout=float(self.heartbeat_timeout),
            linger=float(self.linger),
            max_batch_bytes=int(self.max_batch_bytes),
            max_message_bytes=int(self.max_message_bytes),
            curve_secret_key=self.curve_secret_key,
            curve_public_key=self.curve_public_key,
            curve_clients=self.curve_clients,
            paths=list(self.paths),
        )

    def _stage(
        self, decl: MapStage, index: int, produced: Any, producer: str, names: set[str]
    ) -> StagePlan:
        fn = _function(decl.fn, "map stage")
        name = decl.name or getattr(fn, "__name__", f"stage{index + 1}")
        if name in names:
            name = f"{name}{index + 1}"
        if not re.fullmatch(r"[\w.\-]{1,100}", name):
            raise PipelineError(f"pipeline {self.name}: a bad stage name {name!r}")
        names.add(name)
        taken, returned = map_types(fn)
        if not compatible(produced, taken):
            raise PipelineError(
                f"pipeline {self.name}: stage {name} ({fn.__qualname__}) takes "
                f"{describe(taken)} but {producer} yields {describe(produced)}"
            )
        where = f"pipeline {self.name}, stage {name}"
        inbound = edge_for(produced if is_message(produced) else taken, self.codec, where)
        outbound = edge_for(returned, self.codec, where)
        workers = decl.workers if decl.workers is not None else (os.cpu_count() or 1)
        _positive(workers, "workers", where, zero=True)
        batch: int | None = None
        if decl.batch != "auto":
            if not isinstance(decl.batch, int) or isinstance(decl.batch, bool):
                raise PipelineError(f"{where}: batch is a positive number or 'auto'")
            _positive(decl.batch, "batch", where)
            batch = decl.batch
        _positive(decl.max_attempts, "max_attempts", where)
        _positive(decl.min_workers, "min_workers", where, zero=True)
        if decl.credit is not None:
            _positive(decl.credit, "credit", where)
        if decl.timeout is not None and not (
            isinstance(decl.timeout, (int, float)) and decl.timeout > 0
        ):
            raise PipelineError(f"{where}: timeout is a positive number of seconds")
        hooks: list[tuple[Callable[[], Any], str] | None] = []
        for hook, role in ((decl.init, "init hook"), (decl.close, "close hook")):
            if hook is None:
                hooks.append(None)
                continue
            hook_fn = _function(hook, role)
            hook_check(hook_fn, role)
            hooks.append((hook_fn, path_of(hook_fn, role)))
        return StagePlan(
            name=name,
            fn=fn,
            path=path_of(fn, "map stage"),
            inbound=inbound,
            outbound=outbound,
            schema=f"{schema_text(taken)} -> {schema_text(returned)}",
            workers=workers,
            batch=batch,
            timeout=float(decl.timeout) if decl.timeout is not None else None,
            max_attempts=decl.max_attempts,
            credit=decl.credit,
            init=hooks[0],
            close=hooks[1],
            min_workers=decl.min_workers,
        )

    def _check_bind(self) -> None:
        if self.bind is not None and not _ENDPOINT.match(self.bind):
            raise PipelineError(
                f"pipeline {self.name}: bad endpoint {self.bind!r} "
                "(tcp://host:port, tcp://host:*, or ipc://path)"
            )
        if self.bind is not None and self.bind.startswith("tcp://"):
            port = self.bind.rsplit(":", 1)[1]
            if port != "*" and not 0 < int(port) < 65536:
                raise PipelineError(f"pipeline {self.name}: bad port in {self.bind!r}")

    def _check_curve(self) -> None:
        if self.curve_secret_key is None:
            if self.curve_clients is not None:
                raise PipelineError("curve_clients needs curve_secret_key (the head's key)")
            return
        from zeropipe.sdk.keys import has_curve

        if not has_curve():
            raise PipelineError("CURVE needs PyNaCl: pip install 'zeropipe[curve]'")
        if self.curve_clients is not None and not os.path.isdir(self.curve_clients):
            raise PipelineError(f"curve_clients: no such directory {self.curve_clients}")

    # -- running ----------------------------------------------------------------

    def run(self, **options: Any) -> RunResult:
        """Runs the pipeline on this machine; see :func:`zeropipe.pipelines.head.run`."""
        from .head import run

        return run(self, **options)


def _function(fn: Fn, role: str) -> Callable[..., Any]:
    if isinstance(fn, str):
        return resolve(fn, role)
    if not callable(fn):
        raise PipelineError(f"the {role} {fn!r} is not callable")
    return fn


def _positive(value: Any, what: str, where: str, zero: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= (0 if zero else 1)
    if not ok:
        raise PipelineError(
            f"{where}: {what} must be a {'non-negative' if zero else 'positive'} integer, "
            f"not {value!r}"
        )


# -- the file format ---------------------------------------------------------------

_PIPELINE_KEYS = {
    "name",
    "codec",
    "ordered",
    "acks",
    "bind",
    "heartbeat",
    "heartbeat_timeout",
    "linger",
    "max_batch_bytes",
    "max_message_bytes",
    "curve_secret_key",
    "curve_public_key",
    "curve_clients",
}
_MAP_KEYS = {
    "fn",
    "name",
    "workers",
    "batch",
    "timeout",
    "max_attempts",
    "credit",
    "init",
    "close",
    "min_workers",
}


def load(path: str) -> Pipeline:
    """A pipeline from a TOML file (see docs/pipelines.md); PipelineError on any mistake."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise PipelineError(f"cannot read the pipeline file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: not valid TOML: {exc}") from exc
    return from_dict(doc, where=path, base=os.path.dirname(os.path.abspath(path)))


def from_dict(doc: dict[str, Any], where: str = "pipeline", base: str | None = None) -> Pipeline:
    _keys(doc, {"pipeline", "source", "map", "sink", "dead_letter"}, where)
    head = _table(doc, "pipeline", where)
    _keys(head, _PIPELINE_KEYS, f"{where} [pipeline]")
    if "name" not in head:
        raise PipelineError(f"{where}: [pipeline] needs a name")
    pipe = Pipeline(**head)
    if base is not None:
        pipe.paths.append(base)
    src = _table(doc, "source", where)
    _keys(src, {"fn", "args", "kwargs", "total"}, f"{where} [source]")
    pipe.source(
        _fn(src, f"{where} [source]"), src.get("args", ()), src.get("kwargs"), src.get("total")
    )
    maps = doc.get("map")
    if not isinstance(maps, list) or not maps:
        raise PipelineError(f"{where}: needs at least one [[map]] stage")
    for i, stage in enumerate(maps):
        here = f"{where} [[map]] #{i + 1}"
        if not isinstance(stage, dict):
            raise PipelineError(f"{here}: not a table")
        _keys(stage, _MAP_KEYS, here)
        pipe.map(_fn(stage, here), **{k: v for k, v in stage.items() if k != "fn"})
    for key in ("sink", "dead_letter"):
        if key in doc:
            table = _table(doc, key, where)
            _keys(table, {"fn"}, f"{where} [{key}]")
            getattr(pipe, key)(_fn(table, f"{where} [{key}]"))
    return pipe


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    table = doc.get(key)
    if not isinstance(table, dict):
        raise PipelineError(f"{where}: needs a [{key}] table")
    return table


def _keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PipelineError(
            f"{where}: unknown key{'s' * (len(unknown) > 1)} {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _fn(table: dict[str, Any], where: str) -> str:
    fn = table.get("fn")
    if not isinstance(fn, str):
        raise PipelineError(f'{where}: needs fn = "package.module:function"')
    return fn

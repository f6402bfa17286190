"""OpenTelemetry traces (``pip install "vccasync[otel]"``), at no cost without them.

Nothing here imports ``opentelemetry`` unless a client was given a ``tracer_provider`` or the
application already imported it (an application that set a global provider did): a client
without one uses the global provider, and only once one is set; until then every hook below
is a no-op. The span tree (see ``docs/observability.md``)::

    vcc.sync.pass                     a sync pass: its changes, whether complete
      vcc.search                      a search: range, filters, pages, items
        vcc.window                    each window (its key, span, resumed or not)
          vcc.page                    each page: items kept, split or not
            vcc.request               each HTTP send of the request core (method, path,
              HTTP GET                status); aiohttp's own span, when instrumented
    vcc.download                      one piece of content: bytes, resumed or not, attempts
    vcc.delete, vcc.delete_batch      deletions: outcome, failures

Retries and 429 waits are events (``vcc.retry``, ``vcc.rate_limited``, with ``vcc.wait_s``)
on the span of the operation that retried. Every span carries ``vcc.account`` (the client
id) and ``vcc.region``; windows and pages ``vcc.window``.

The hooks are decorators and context managers the instrumented modules call in one line;
none changes what it wraps.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
)
from contextvars import ContextVar
from functools import wraps
from importlib import metadata
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from attrs import frozen

from ._instants import format_instant
from ._windows import Page, Window

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from yarl import URL

    from ._query import SearchQuery

__all__ = [
    "NO_TRACING",
    "Traced",
    "Tracing",
    "exporting",
    "of",
    "traced_batch_deletion",
    "traced_deletion",
    "traced_download",
    "traced_pages",
    "traced_pass",
    "traced_search",
    "traced_window",
]

TRACER_NAME = "vccasync"
Attributes = Mapping[str, str | int | float | bool]
P = ParamSpec("P")
S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


def _api() -> Any:
    """``opentelemetry.trace`` if someone imported it (never imported from here)."""
    return sys.modules.get("opentelemetry.trace")


class Traced:
    """A span in progress as the hooks see it: attributes can be added; a no-op when off."""

    __slots__ = ("span",)

    def __init__(self, span: Span | None = None) -> None:
        self.span = span

    def set(self, attributes: Attributes) -> None:
        """Add ``attributes`` to the span."""
        if self.span is not None:
            self.span.set_attributes(attributes)

    def answered(self, status: int) -> None:
        """The HTTP status of the answer (an error from 400 on, as OpenTelemetry's HTTP
        conventions have it for clients)."""
        if self.span is not None:
            self.span.set_attribute("http.response.status_code", status)
            if status >= 400:
                self.span.set_attribute("error.type", str(status))
                self.span.set_status(_api().StatusCode.ERROR)


class _Off(Traced):
    """The no-op span, and the context manager that lends it (one for every hook)."""

    __slots__ = ()

    def __enter__(self) -> Traced:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_OFF = _Off()


class Tracing:
    """Where one client's spans go: ``provider`` (None: the global provider, once one is set),
    each span with ``attributes`` (the account and region)."""

    def __init__(
        self, provider: TracerProvider | None = None, attributes: Attributes | None = None
    ) -> None:
        self.provider = provider
        self.attributes = dict(attributes or {})
        self._cached: tuple[object, Tracer] | None = None

    def __repr__(self) -> str:
        return f"Tracing(provider={self.provider!r})"

    @classmethod
    def of_client(cls, provider: TracerProvider | None, client_id: str, region: str) -> Tracing:
        """The tracing of a client: ``vcc.account`` and ``vcc.region`` on every span."""
        return cls(provider, {"vcc.account": client_id, "vcc.region": region})

    def tracer(self) -> Tracer | None:
        """The tracer to use now, or None when there is nowhere to send spans."""
        provider: Any = self.provider
        if provider is None:
            api = _api()
            if api is None:  # the application never imported OpenTelemetry: no provider
                return None
            provider = api.get_tracer_provider()
            if isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider):
                return None  # none configured (yet)
        elif (api := _api()) is not None and isinstance(provider, api.NoOpTracerProvider):
            return None
        cached = self._cached
        if cached is None or cached[0] is not provider:
            cached = self._cached = (provider, provider.get_tracer(TRACER_NAME, _version()))
        return cached[1]

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[Traced]:
        """A span ``name`` under the current one, current while the block runs."""
        tracer = self.tracer()
        if tracer is None:
            yield _OFF
            return
        merged = {**self.attributes, **(attributes or {})}
        with tracer.start_as_current_span(name, attributes=merged) as s:
            yield Traced(s)

    def request(self, method: str, url: URL) -> contextlib.AbstractContextManager[Traced]:
        """The span of one HTTP send of the request core (never the query: it may be signed)."""
        if self.tracer() is None:
            return _OFF
        attributes = {"http.request.method": method, "url.path": url.path}
        if url.host:
            attributes["server.address"] = url.host
        return self.span("vcc.request", attributes)

    def event(self, name: str, attributes: Attributes) -> None:
        """Add an event to the current span (when this client's spans go somewhere)."""
        if self.tracer() is not None:
            _api().get_current_span().add_event(name, attributes)

    def retried(
        self, attempt: int, error: BaseException | None, wait: float, *, limited: bool
    ) -> None:
        """An attempt failed and is retried after ``wait`` seconds (``limited``: after a 429,
        every request of the client waits that long)."""
        if self.tracer() is None:
            return
        attributes: dict[str, str | int | float] = {"vcc.attempt": attempt, "vcc.wait_s": wait}
        if error is not None:
            attributes["error.type"] = type(error).__name__
            attributes["vcc.error"] = str(error)
        self.event("vcc.rate_limited" if limited else "vcc.retry", attributes)


NO_TRACING = Tracing()  # the global provider, without client attributes


def _version() -> str:
    try:
        return metadata.version("vccasync")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree
        return "0.0.0"


def of(owner: object) -> Tracing:
    """The tracing of ``owner`` (a client or session: its ``tracing``), else the global one."""
    found = getattr(owner, "tracing", None)
    return found if isinstance(found, Tracing) else NO_TRACING


@frozen
class _Scope:
    """What runs inside a traced search or pass: its tracing and the search's span."""

    tracing: Tracing
    tracer: Tracer
    search: Span | None


_scope: ContextVar[_Scope | None] = ContextVar("vccasync_tracing", default=None)


async def _iterate(
    tracing: Tracing,
    tracer: Tracer,
    inner: AsyncIterator[T],
    name: str,
    attributes: Attributes,
    seen: Callable[[Traced, T], None],
    done: Callable[[Traced, bool], None],
    *,
    search: bool,
) -> AsyncGenerator[T, None]:
    """``inner`` under one span, current only while ``inner`` runs (never while the consumer
    holds an item: the consumer's code is not in the span, and a generator closed from
    another task detaches nothing). ``seen`` is told of each item, ``done`` at the end,
    whether ``inner`` ran to its end."""
    api = _api()
    span = tracer.start_span(name, attributes={**tracing.attributes, **attributes})
    traced, finished = Traced(span), False
    try:
        while True:
            with api.use_span(span, record_exception=False, set_status_on_exception=False):
                token = _scope.set(_Scope(tracing, tracer, span if search else None))
                try:
                    item = await anext(inner)
                except StopAsyncIteration:
                    finished = True
                    break
                finally:
                    _scope.reset(token)
            seen(traced, item)
            yield item
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(api.Status(api.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        await _close(inner)
        done(traced, finished)
        span.end()


def traced_search(
    fn: Callable[[S], AsyncIterator[Page]],
) -> Callable[[S], AsyncIterator[Page]]:
    """A ``vcc.search`` span around ``InteractionSearch.pages``."""

    @wraps(fn)
    def pages(search: S) -> AsyncIterator[Page]:
        tracing = of(getattr(search, "_session", None))
        tracer = tracing.tracer()
        if tracer is None:
            return fn(search)
        query: SearchQuery = getattr(search, "query")  # noqa: B009
        plan = getattr(search, "plan", [])
        attributes: dict[str, str | int | float | bool] = {
            "vcc.search.start": format_instant(query.start),
            "vcc.search.end": format_instant(query.end),
            "vcc.search.limit": query.limit,
            "vcc.search.windows_planned": len(plan),
            "vcc.search.resumed": any(token is not None for _, token in plan),
        }
        for key, value in query.filters.as_text().items():
            attributes[f"vcc.filter.{key}"] = value
        counts = {"pages": 0, "items": 0, "windows": 0, "splits": 0}

        def seen(traced: Traced, page: Page) -> None:
            counts["pages"] += 1
            counts["items"] += len(page.items)
            counts["windows"] += page.last
            counts["splits"] += bool(page.spawned)

        def done(traced: Traced, finished: bool) -> None:
            traced.set({f"vcc.search.{k}": v for k, v in counts.items()})
            traced.set({"vcc.search.complete": finished})

        inner = fn(search)
        return _iterate(tracing, tracer, inner, "vcc.search", attributes, seen, done, search=True)

    return pages


def _window_attributes(window: Window) -> dict[str, str | bool]:
    return {
        "vcc.window": window.key,
        "vcc.window.start": format_instant(window.start),
        "vcc.window.end": format_instant(window.end),
    }


def traced_window(
    fn: Callable[Concatenate[S, Window, str | None, P], Coroutine[Any, Any, None]],
) -> Callable[Concatenate[S, Window, str | None, P], Coroutine[Any, Any, None]]:
    """A ``vcc.window`` span around the run of one window, a child of its search's span."""

    @wraps(fn)
    def run(
        self: S, window: Window, token: str | None, /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, None]:
        scope = _scope.get()
        if scope is None:
            return fn(self, window, token, *args, **kwargs)
        attributes = {**scope.tracing.attributes, **_window_attributes(window)}
        attributes["vcc.window.resumed"] = token is not None
        return _window(scope, fn(self, window, token, *args, **kwargs), attributes)

    return run


async def _window(scope: _Scope, run: Awaitable[None], attributes: Attributes) -> None:
    api = _api()
    parent = api.set_span_in_context(scope.search) if scope.search is not None else None
    with scope.tracer.start_as_current_span("vcc.window", context=parent, attributes=attributes):
        await run


def traced_pages(
    fn: Callable[Concatenate[S, Window, P], AsyncIterator[Page]],
) -> Callable[Concatenate[S, Window, P], AsyncIterator[Page]]:
    """A ``vcc.page`` span around the fetching of each page of a window's chain."""

    @wraps(fn)
    def window_pages(
        self: S, window: Window, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[Page]:
        scope = _scope.get()
        if scope is None:
            return fn(self, window, *args, **kwargs)
        return _pages(scope, fn(self, window, *args, **kwargs), window)

    return window_pages


async def _pages(scope: _Scope, inner: AsyncIterator[Page], window: Window) -> AsyncIterator[Page]:
    attributes = {**scope.tracing.attributes, "vcc.window": window.key}
    try:
        while True:
            with scope.tracer.start_as_current_span("vcc.page", attributes=attributes) as span:
                try:
                    page = await anext(inner)
                except StopAsyncIteration:
                    return
                span.set_attributes(
                    {
                        "vcc.page.items": len(page.items),
                        "vcc.page.last": page.last,
                        "vcc.page.split": bool(page.spawned),
                        "vcc.page.spawned": len(page.spawned),
                    }
                )
            yield page
            if page.last:  # the chain ends here: no span for the generator's return
                return
    finally:
        await _close(inner)


async def _close(inner: AsyncIterator[Any]) -> None:
    """Close an async generator (what the hooks wrap), as ``async for`` would have."""
    aclose = getattr(inner, "aclose", None)
    if aclose is not None:
        await aclose()


class _Downloaded(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def resumed_from(self) -> int: ...
    @property
    def attempts(self) -> int: ...


D = TypeVar("D", bound=_Downloaded)


def traced_download(
    fn: Callable[Concatenate[S, str, str, P], Awaitable[D]],
) -> Callable[Concatenate[S, str, str, P], Awaitable[D]]:
    """A ``vcc.download`` span around one download: its bytes, resumed or not, attempts."""

    @wraps(fn)
    def download(
        session: S, guid: str, content_key: str, /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[D]:
        tracing = of(session)
        if tracing.tracer() is None:
            return fn(session, guid, content_key, *args, **kwargs)
        run = fn(session, guid, content_key, *args, **kwargs)
        return _download(tracing, run, guid, content_key)

    return download


async def _download(tracing: Tracing, run: Awaitable[D], guid: str, content_key: str) -> D:
    attributes = {"vcc.guid": guid, "vcc.content_key": content_key}
    with tracing.span("vcc.download", attributes) as traced:
        result = await run
        traced.set(
            {
                "vcc.download.bytes": result.size,
                "vcc.download.resumed": result.resumed_from > 0,
                "vcc.download.resumed_from": result.resumed_from,
                "vcc.download.attempts": result.attempts,
            }
        )
        return result


def traced_deletion(
    fn: Callable[Concatenate[S, str, P], Awaitable[R]],
) -> Callable[Concatenate[S, str, P], Awaitable[R]]:
    """A ``vcc.delete`` span around one deletion (guid, content key): its outcome."""

    @wraps(fn)
    def delete(self: S, guid: str, /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        tracing = of(getattr(self, "_session", None))
        if tracing.tracer() is None:
            return fn(self, guid, *args, **kwargs)
        attributes = {"vcc.guid": str(guid)}
        if args:
            attributes["vcc.content_key"] = str(args[0])
        return _outcome(tracing, "vcc.delete", fn(self, guid, *args, **kwargs), attributes)

    return delete


async def _outcome(tracing: Tracing, name: str, run: Awaitable[R], attributes: Attributes) -> R:
    with tracing.span(name, attributes) as traced:
        result = await run
        if isinstance(result, list):  # the failures of a batch
            traced.set({"vcc.delete.failures": len(result)})
        else:
            traced.set({"vcc.delete.outcome": str(result)})
        return result


def traced_batch_deletion(
    fn: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """A ``vcc.delete_batch`` span around a batch deletion: the number of failures."""

    @wraps(fn)
    def delete(self: S, /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        tracing = of(getattr(self, "_session", None))
        if tracing.tracer() is None:
            return fn(self, *args, **kwargs)
        return _outcome(tracing, "vcc.delete_batch", fn(self, *args, **kwargs), {})

    return delete


def traced_pass(
    fn: Callable[[S], AsyncGenerator[T, None]],
) -> Callable[[S], AsyncGenerator[T, None]]:
    """A ``vcc.sync.pass`` span around ``SyncEngine.run_pass``: the pass's counts."""

    @wraps(fn)
    def run_pass(engine: S) -> AsyncGenerator[T, None]:
        tracing = of(getattr(engine, "client", None))
        tracer = tracing.tracer()
        if tracer is None:
            return fn(engine)

        def done(traced: Traced, finished: bool) -> None:
            last = getattr(engine, "last", None) if finished else None  # else: an earlier pass's
            stopped = bool(getattr(engine, "stopped", False))
            attributes: dict[str, str | int | bool] = {"vcc.sync.complete": last is not None}
            if stopped:
                attributes["vcc.sync.stopped"] = True
            if last is not None:
                attributes["vcc.sync.start"] = format_instant(last.span.start)
                attributes["vcc.sync.end"] = format_instant(last.span.end)
                for kind in ("new", "changed", "removed", "unchanged", "left"):
                    attributes[f"vcc.sync.{kind}"] = getattr(last, kind)
            traced.set(attributes)

        inner = fn(engine)
        return _iterate(tracing, tracer, inner, "vcc.sync.pass", {}, _ignore, done, search=False)

    return run_pass


def _ignore(traced: Traced, item: object) -> None:
    return None


@contextlib.contextmanager
def exporting(environ: Mapping[str, str] | None = None) -> Iterator[SdkTracerProvider | None]:
    """For the CLI: traces to ``OTEL_TRACES_EXPORTER`` (``console``: on stderr; ``otlp`` or
    any installed exporter's name, configured by its own ``OTEL_*`` variables) while the block
    runs, through a global provider flushed at the end; with ``aiohttp``'s spans under the
    request core's when ``opentelemetry-instrumentation-aiohttp-client`` is installed.

    Unset or ``none``: nothing, and nothing imported. Honoured only when the SDK is installed
    (else one warning line) and no global provider is set already (``opentelemetry-instrument``
    sets one: it is used as it is).
    """
    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names or names == ["none"]:
        yield None
        return
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        print(
            "vccasync: OTEL_TRACES_EXPORTER is set, but no traces without the OpenTelemetry"
            ' SDK: pip install "vccasync[otel]"',
            file=sys.stderr,
        )
        yield None
        return
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        yield None  # configured already (opentelemetry-instrument)
        return
    from ._errors import InvalidRequestError

    named = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = SdkProvider(resource=Resource.create({} if named else {"service.name": "vccasync"}))
    for name in (n for n in names if n != "none"):
        if name == "console":
            exporter: Any = ConsoleSpanExporter(out=sys.stderr)
        else:
            found = metadata.entry_points(group="opentelemetry_traces_exporter", name=name)
            if not found:
                raise InvalidRequestError(
                    f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed"
                    " (console, or install its exporter: opentelemetry-exporter-otlp for otlp)"
                )
            exporter = next(iter(found)).load()()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrumentor: Any = None
    with contextlib.suppress(ImportError):
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        instrumentor = AioHttpClientInstrumentor()
        instrumentor.instrument(tracer_provider=provider, url_filter=_without_query)
    try:
        yield provider
    finally:
        if instrumentor is not None:
            instrumentor.uninstrument()
        provider.shutdown()


def _without_query(url: Any) -> str:
    """A URL as aiohttp's spans record it: without its query (a signed URL's is a secret)."""
    return str(url.with_query(None))

"""Argument types and options shared by the subcommands; the client, search and closing line
of a run."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, date, datetime, time, timedelta
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

import attrs

from vccasync._client import VccClient
from vccasync._config import REGIONS, ClientConfig
from vccasync._errors import InvalidRequestError
from vccasync._models import ContentType
from vccasync._query import (
    FILTERS,
    MAX_PREFIX,
    SearchFilters,
    SearchQuery,
    make_filters,
    make_query,
)
from vccasync._windows import RESOLUTION

from . import _demo as demo
from ._parsing import OneLineParser, say

if TYPE_CHECKING:
    from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer

__all__ = [
    "CONTENT_TYPES",
    "RESUME",
    "STOP_SAID",
    "DeprecatedAlias",
    "OneLineParser",
    "add_account_option",
    "add_client_options",
    "add_filter_options",
    "add_search_options",
    "add_type_option",
    "check_types",
    "client_from_args",
    "connect",
    "filters_from_args",
    "instant",
    "open_client",
    "positive",
    "prefix",
    "query_from_args",
    "say",
    "summary_on_stop",
]

RESUME = "; rerun the same command to resume"
STOP_SAID = threading.Event()  # a run said its line on Ctrl-C: main adds no second one
CONTENT_TYPES = tuple(t.value for t in ContentType)  # the types the vendor documents

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class DeprecatedAlias(argparse.Action):
    """A hidden old spelling of an option: stores what the ``new`` one does, and says in one
    line on stderr to use ``new``."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        say(f"{parser.prog}: warning: {option_string} is deprecated here, use {self.new}")
        setattr(namespace, self.dest, values)


def instant(text: str, *, end: bool = False) -> datetime:
    """An aware datetime from ISO 8601 with ``Z`` or an offset; a plain date is a whole UTC day
    (its first instant for a start, its last millisecond for an end)."""
    if _DAY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid date") from None
        first = datetime.combine(day, time(), tzinfo=UTC)
        return first + timedelta(days=1) - RESOLUTION if end else first
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or date-time (like 2025-01-31 or"
            " 2025-01-31T08:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add Z (UTC) or an offset like +01:00"
        )
    return moment


def _start(text: str) -> datetime:
    return instant(text)


def _end(text: str) -> datetime:
    return instant(text, end=True)


def prefix(text: str) -> str:
    """An address prefix as the API accepts it (1 to 50 characters)."""
    if not 1 <= len(text) <= MAX_PREFIX:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PREFIX} characters, got {len(text)}")
    return text


def positive(kind: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argument type: ``kind`` of the text, which must be above zero."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {name}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return convert


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """The range and filters of a search."""
    parser.add_argument(
        "--start", required=True, type=_start, metavar="ISO",
        help="first instant (ISO 8601 with Z or an offset; a plain date starts that UTC day)",
    )  # fmt: skip
    parser.add_argument(
        "--end", required=True, type=_end, metavar="ISO",
        help="last instant, included (a plain date includes that whole UTC day)",
    )  # fmt: skip
    add_filter_options(parser)


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The filters of a search, one option each, as ``vccasync._query.FILTERS`` declares them."""
    for f in FILTERS:
        parser.add_argument(
            f.flag, dest=f.name, metavar=f.metavar, help=f.help,
            choices=f.choices or None, type=prefix if f.kind == "prefix" else str,
        )  # fmt: skip


def add_account_option(parser: argparse.ArgumentParser) -> None:
    """``--account``: the name PostgreSQL rows are recorded under."""
    parser.add_argument(
        "--account", default="default", metavar="NAME",
        help="the account name recorded with PostgreSQL rows (default: default)",
    )  # fmt: skip


def _content_type(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a content type must not be empty")
    return text.strip()


def add_type_option(parser: argparse.ArgumentParser) -> None:
    """``--type``, repeatable, into ``args.types`` (None: every type), and ``--any-type``;
    the command's ``run`` calls :func:`check_types`."""
    parser.add_argument(
        "--type", action="append", type=_content_type, dest="types", metavar="TYPE",
        help=f"only this content type ({', '.join(CONTENT_TYPES)}); repeat for several;"
        " default: all",
    )  # fmt: skip
    parser.add_argument(
        "--any-type", action="store_true",
        help="accept a --type that is not in the list above (one the API added since)",
    )  # fmt: skip


def check_types(args: argparse.Namespace) -> None:
    """``InvalidRequestError`` for a ``--type`` the API does not document (a typo would match
    nothing and succeed with no files), unless ``--any-type``."""
    if args.any_type:
        return
    folded = {t.casefold(): t for t in CONTENT_TYPES}
    for kind in args.types or ():
        if kind not in CONTENT_TYPES:
            near = get_close_matches(kind.casefold(), list(folded), 1)
            hint = f"did you mean {folded[near[0]]}? " if near else ""
            raise InvalidRequestError(
                f"--type {kind!r} is not a documented content type ({hint}types:"
                f" {', '.join(CONTENT_TYPES)}; --any-type accepts others)"
            )


def _default(name: str) -> Any:
    """The client's default for setting ``name`` (help texts quote it, never a copy)."""
    return attrs.fields_dict(ClientConfig)[name].default


def add_client_options(parser: argparse.ArgumentParser, *, demo_data: str = demo.DATA) -> None:
    """Connection settings; each overrides its ``VCC_*`` variable or the client's default.
    ``demo_data`` tells, in ``--demo``'s help, what data the command's demo serves."""
    group = parser.add_argument_group(
        "connection",
        "credentials come from VCC_CLIENT_ID and VCC_CLIENT_SECRET; VCC_REGION, VCC_API_URL"
        " and VCC_AUTH_URL are read too, and the options below override them",
    )
    group.add_argument("--region", choices=REGIONS, help="default: $VCC_REGION or emea")
    group.add_argument("--api-url", metavar="URL", help="default: $VCC_API_URL or the region's")
    group.add_argument(
        "--auth-url", metavar="URL",
        help="the auth base (https://REGION.cc.vonage.com/Auth) or its token endpoint"
        " (…/Auth/connect/token), either form; default: $VCC_AUTH_URL or the region's",
    )  # fmt: skip
    group.add_argument(
        "--concurrency", type=positive(int, "whole number"), metavar="N",
        help=f"windows fetched at once at most (default {_default('concurrency')}; a search"
        " runs as many as the request budget and the API's latency need)",
    )  # fmt: skip
    group.add_argument(
        "--requests-per-minute", "--rpm", type=positive(float, "number"), metavar="N",
        dest="requests_per_minute",
        help=f"the client's request budget (default {_default('requests_per_minute'):g},"
        " the vendor's fair-usage figure)",
    )  # fmt: skip
    group.add_argument(
        "--max-attempts", type=positive(int, "whole number"), metavar="N",
        help=f"tries per request before giving up (default {_default('max_attempts')})",
    )  # fmt: skip
    parser.add_argument(
        "--demo", action="store_true",
        help=f"run against the embedded fake API on 127.0.0.1 with {demo_data};"
        " no credentials needed, VCC_* variables are ignored",
    )  # fmt: skip
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def client_from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    forced: Mapping[str, Any] | None = None,
) -> VccClient:
    """A client from the environment, then ``defaults``, the options, and ``forced`` (the
    demo's address and credentials) in rising order of precedence.

    Raises ``InvalidRequestError`` for missing credentials or bad settings (no I/O).
    """
    names = (
        "region", "api_url", "auth_url", "concurrency", "requests_per_minute", "max_attempts",
        "deletes_per_minute",
    )  # fmt: skip
    options = {name: getattr(args, name, None) for name in names}
    merged = {
        **(defaults or {}),
        **{k: v for k, v in options.items() if v is not None},
        **(forced or {}),
    }
    return VccClient.from_env(os.environ if environ is None else environ, **merged)


async def open_client(
    args: argparse.Namespace,
    stack: AsyncExitStack,
    *,
    demo_spec: DatasetSpec = demo.DEMO_SPEC,
    demo_config: FakeConfig = demo.DEMO_CONFIG,
    on_demo: Callable[[FakeVccServer], None] | None = None,
) -> VccClient:
    """The client of a run (not yet open): from the environment and options, or with
    ``--demo`` pointed at a demo API that ``stack`` keeps running (``VCC_*`` ignored), with
    the demo server's rate limits (requests, deletions) as its default budgets; ``on_demo``
    sees that server before the first request (to give it what earlier runs changed)."""
    if not args.demo:
        return client_from_args(args)
    server = await stack.enter_async_context(demo.demo_api(demo_spec, demo_config))
    if on_demo is not None:
        on_demo(server)
    limits = {
        "requests_per_minute": demo_config.rate_limit_per_minute,
        "deletes_per_minute": demo_config.deletes.per_minute,
    }
    return client_from_args(args, {}, defaults=limits, forced=demo.client_settings(server))


async def connect(vcc: VccClient, stack: AsyncExitStack) -> None:
    """Open ``vcc`` for the rest of ``stack`` and get a token first, so that wrong credentials
    are one request and one clear error."""
    await stack.enter_async_context(vcc)
    await vcc.session.authenticate()


def filters_from_args(args: argparse.Namespace) -> SearchFilters:
    """The filter options; ``InvalidRequestError`` if one is wrong."""
    return make_filters(**{f.name: getattr(args, f.name) for f in FILTERS})


def query_from_args(args: argparse.Namespace) -> SearchQuery:
    """The search of the range and filter options; ``InvalidRequestError`` if it is wrong."""
    return make_query(args.start, args.end, filters=filters_from_args(args))


@contextmanager
def summary_on_stop(
    line: Callable[[], str | None],
    *,
    unless: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """When the block ends by an exception (other than ``unless``), say ``line()`` (unless
    None) and how to resume, as one line, then let the exception go on. Interrupted (Ctrl-C),
    the line says so and ``main`` adds no second one."""
    try:
        yield
    except unless:
        raise
    except BaseException as exc:
        said = line()
        if said is not None:
            interrupted = isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            say(said + ("; interrupted" + RESUME.removeprefix(";") if interrupted else RESUME))
            if interrupted:
                STOP_SAID.set()
        raise

"""vccasync: an async client for the Vonage Contact Center Interaction Content API.

The public names are imported on first use (PEP 562), so that a command such as
``vccasync --version`` does not pay for the whole client; ``from vccasync import VccClient``
works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import VccClient
    from .config import ClientConfig
    from .content.bulk import BulkProgress
    from .content.download import DownloadResult
    from .converter import to_api
    from .deletes import DeleteFailure, DeleteOutcome
    from .errors import (
        APIConnectionError,
        APIStatusError,
        AuthenticationError,
        InvalidRequestError,
        InvalidTypeError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitedError,
        ResponseValidationError,
        VccError,
    )
    from .models import (
        AgentRef,
        Content,
        ContentProperties,
        ContentType,
        Direction,
        Interaction,
        InteractionPlanRef,
    )
    from .query import SearchFilters, SearchQuery, make_filters, make_query
    from .search import InteractionSearch
    from .windows import Page, Window, split

    __version__: str

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AgentRef",
    "AuthenticationError",
    "BulkProgress",
    "ClientConfig",
    "Content",
    "ContentProperties",
    "ContentType",
    "DeleteFailure",
    "DeleteOutcome",
    "Direction",
    "DownloadResult",
    "Interaction",
    "InteractionPlanRef",
    "InteractionSearch",
    "InvalidRequestError",
    "InvalidTypeError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseValidationError",
    "SearchFilters",
    "SearchQuery",
    "VccClient",
    "VccError",
    "Window",
    "__version__",
    "make_filters",
    "make_query",
    "split",
    "to_api",
]

_MODULES = {  # where each public name lives
    **dict.fromkeys(("VccClient",), ".client"),
    **dict.fromkeys(("ClientConfig",), ".config"),
    **dict.fromkeys(("BulkProgress",), ".content.bulk"),
    **dict.fromkeys(("DownloadResult",), ".content.download"),
    **dict.fromkeys(("to_api",), ".converter"),
    **dict.fromkeys(("DeleteFailure", "DeleteOutcome"), ".deletes"),
    **dict.fromkeys(
        (
            "APIConnectionError",
            "APIStatusError",
            "AuthenticationError",
            "InvalidRequestError",
            "InvalidTypeError",
            "NotFoundError",
            "PermissionDeniedError",
            "RateLimitedError",
            "ResponseValidationError",
            "VccError",
        ),
        ".errors",
    ),
    **dict.fromkeys(
        (
            "AgentRef",
            "Content",
            "ContentProperties",
            "ContentType",
            "Direction",
            "Interaction",
            "InteractionPlanRef",
        ),
        ".models",
    ),
    **dict.fromkeys(("SearchFilters", "SearchQuery", "make_filters", "make_query"), ".query"),
    **dict.fromkeys(("InteractionSearch",), ".search"),
    **dict.fromkeys(("Page", "Window", "split"), ".windows"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vccasync")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (then kept in the module)."""
    if name == "__version__":
        value: Any = _version()
    elif name in _MODULES:
        value = getattr(importlib.import_module(_MODULES[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

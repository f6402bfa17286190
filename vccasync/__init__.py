"""vccasync: an async client for the Vonage Contact Center Interaction Content API.

The public names are imported on first use (PEP 562), so that a command such as
``vccasync --version`` does not pay for the whole client; ``from vccasync import VccClient``
works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import VccClient
    from ._config import ClientConfig
    from ._converter import to_api
    from ._deletes import DeleteFailure, DeleteOutcome
    from ._errors import (
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
    from ._models import (
        AgentRef,
        Content,
        ContentProperties,
        ContentType,
        Direction,
        Interaction,
        InteractionPlanRef,
    )
    from ._query import SearchFilters, SearchQuery, make_filters, make_query
    from ._search import InteractionSearch
    from ._windows import Page, Window, split
    from .content._bulk import BulkProgress
    from .content._download import DownloadResult

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
    **dict.fromkeys(("VccClient",), "._client"),
    **dict.fromkeys(("ClientConfig",), "._config"),
    **dict.fromkeys(("BulkProgress",), ".content._bulk"),
    **dict.fromkeys(("DownloadResult",), ".content._download"),
    **dict.fromkeys(("to_api",), "._converter"),
    **dict.fromkeys(("DeleteFailure", "DeleteOutcome"), "._deletes"),
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
        "._errors",
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
        "._models",
    ),
    **dict.fromkeys(("SearchFilters", "SearchQuery", "make_filters", "make_query"), "._query"),
    **dict.fromkeys(("InteractionSearch",), "._search"),
    **dict.fromkeys(("Page", "Window", "split"), "._windows"),
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

"""vccasync: an async client for the Vonage Contact Center Interaction Content API."""

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("vccasync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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

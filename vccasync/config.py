"""One frozen configuration object; the environment is read only by ``from_env``."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen

from .errors import InvalidRequestError

__all__ = ["REGIONS", "ClientConfig", "config_from_env"]

REGIONS = ("emea", "nam", "apac")
SCOPE = "interaction-content:read"
ACCEPT = "application/vnd.newvoicemedia.v3+json"
DEFAULT_RATE = 160.0  # requests per minute, the vendor's documented fair-usage figure


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequestError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidRequestError(
            f"{name} must use https (plain http is allowed only on loopback): {url!r}"
        )
    return url.rstrip("/")


@frozen(kw_only=True)
class ClientConfig:
    """Everything a ``VccClient`` needs; the secret never appears in the repr."""

    client_id: str
    client_secret: str = field(repr=False)
    region: str = "emea"
    api_url: str = ""
    auth_url: str = ""
    scope: str = SCOPE
    concurrency: int = 8
    requests_per_minute: float | None = DEFAULT_RATE
    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    timeout: float = 60.0
    token_refresh_margin: float = 60.0

    def __attrs_post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise InvalidRequestError("client id and client secret are both required")
        if self.region not in REGIONS:
            raise InvalidRequestError(
                f"region must be one of {', '.join(REGIONS)}, got {self.region!r}"
            )
        api = self.api_url or f"https://{self.region}.api.newvoicemedia.com/interaction-content"
        auth = self.auth_url or f"https://{self.region}.cc.vonage.com/Auth"
        object.__setattr__(self, "api_url", _check_url("api_url", api))
        object.__setattr__(self, "auth_url", _check_url("auth_url", auth))
        if self.concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1")
        if self.requests_per_minute is not None and self.requests_per_minute <= 0:
            raise InvalidRequestError("requests_per_minute must be positive (or None for no limit)")
        if self.max_attempts < 1:
            raise InvalidRequestError("max_attempts must be at least 1")
        if self.timeout <= 0:
            raise InvalidRequestError("timeout must be positive")

    @property
    def token_url(self) -> str:
        """Where client-credentials tokens are requested."""
        return f"{self.auth_url}/connect/token"


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
    """A ``ClientConfig`` from ``VCC_*`` variables; keyword overrides win when not None."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {
        "client_id": env.get("VCC_CLIENT_ID", ""),
        "client_secret": env.get("VCC_CLIENT_SECRET", ""),
        "region": env.get("VCC_REGION") or "emea",
        "api_url": env.get("VCC_API_URL", ""),
        "auth_url": env.get("VCC_AUTH_URL", ""),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values["client_id"] or not values["client_secret"]:
        raise InvalidRequestError("missing credentials: set VCC_CLIENT_ID and VCC_CLIENT_SECRET")
    return ClientConfig(**values)

"""One frozen configuration object; the environment is read only by ``from_env``."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from attrs import field, fields, frozen

from ._errors import InvalidRequestError, InvalidTypeError

__all__ = [
    "DELETE_SCOPE",
    "READ_SCOPE",
    "REGIONS",
    "ClientConfig",
    "config_from_env",
    "make_config",
]

REGIONS = ("emea", "nam", "apac")
READ_SCOPE = "interaction-content:read"
DELETE_SCOPE = "interaction-content:delete"
ACCEPT = "application/vnd.newvoicemedia.v3+json"
DEFAULT_RATE = 160.0  # requests per minute, the vendor's documented fair-usage figure
DEFAULT_DELETE_RATE = 16.0  # deletions per minute, as the vendor's deletion sample
_FROM_ENV = ("client_id", "client_secret", "region", "api_url", "auth_url")
TOKEN_PATH = "/connect/token"  # the token endpoint, below the auth URL


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


def _auth_base(url: str) -> str:
    """The auth URL without the token endpoint's path: either form may be given."""
    return url.removesuffix(TOKEN_PATH)


def _check_number(
    name: str, value: object, *, integer: bool = False, minimum: float | None = None
) -> None:
    """``value`` is a number (whole if ``integer``), positive or at least ``minimum``."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InvalidTypeError(
            f"{name} must be {'a whole number' if integer else 'a number'}, got {value!r}"
        )
    assert isinstance(value, int | float)
    number = float(value)
    if minimum is None and not number > 0:
        raise InvalidRequestError(f"{name} must be positive, got {value!r}")
    if minimum is not None and not number >= minimum:
        raise InvalidRequestError(f"{name} must be at least {minimum:g}, got {value!r}")


@frozen(kw_only=True)
class ClientConfig:
    """Everything a ``VccClient`` needs; the secret never appears in the repr."""

    client_id: str
    client_secret: str = field(repr=False)
    region: str = "emea"
    api_url: str = ""
    auth_url: str = ""  # the base (…/Auth) or the token endpoint itself (…/Auth/connect/token)
    scope: str = READ_SCOPE
    delete_scope: str = DELETE_SCOPE
    concurrency: int = 64  # a cap: searches derive how many windows fetch from the budget
    requests_per_minute: float | None = DEFAULT_RATE
    burst: int = 1  # requests the budget lets through at once after an idle spell
    deletes_per_minute: float | None = DEFAULT_DELETE_RATE
    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    timeout: float = 60.0
    token_refresh_margin: float = 60.0

    def __attrs_post_init__(self) -> None:
        for name in ("client_id", "client_secret", "region", "api_url", "auth_url", "scope"):
            if not isinstance(getattr(self, name), str):
                raise InvalidTypeError(f"{name} must be a string")
        if not isinstance(self.delete_scope, str):
            raise InvalidTypeError("delete_scope must be a string")
        if not self.client_id or not self.client_secret:
            raise InvalidRequestError("client id and client secret are both required")
        if self.region not in REGIONS:
            raise InvalidRequestError(
                f"region must be one of {', '.join(REGIONS)}, got {self.region!r}"
            )
        api = self.api_url or f"https://{self.region}.api.newvoicemedia.com/interaction-content"
        auth = self.auth_url or f"https://{self.region}.cc.vonage.com/Auth"
        object.__setattr__(self, "api_url", _check_url("api_url", api))
        object.__setattr__(self, "auth_url", _auth_base(_check_url("auth_url", auth)))
        _check_number("concurrency", self.concurrency, integer=True, minimum=1)
        _check_number("max_attempts", self.max_attempts, integer=True, minimum=1)
        _check_number("burst", self.burst, integer=True, minimum=1)
        for name in ("requests_per_minute", "deletes_per_minute"):
            if getattr(self, name) is not None:  # None: no limit
                _check_number(name, getattr(self, name))
        for name in ("backoff_initial", "backoff_max", "retry_after_max", "timeout"):
            _check_number(name, getattr(self, name))
        _check_number("token_refresh_margin", self.token_refresh_margin, minimum=0)

    @property
    def token_url(self) -> str:
        """Where client-credentials tokens are requested."""
        return self.auth_url + TOKEN_PATH


def make_config(**values: Any) -> ClientConfig:
    """A ``ClientConfig``; an unknown setting is an ``InvalidTypeError``, not a bare TypeError."""
    unknown = sorted(set(values) - {a.name for a in fields(ClientConfig)})
    if unknown:
        raise InvalidTypeError(f"unknown client option(s): {', '.join(unknown)}")
    return ClientConfig(**values)


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
    """A ``ClientConfig`` from ``VCC_*`` variables; keyword overrides win.

    For the settings read from the environment (credentials, region, URLs) an override of
    None means "not given"; for every other setting None is a value (``requests_per_minute=
    None`` switches the budget off).
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {
        "client_id": env.get("VCC_CLIENT_ID", ""),
        "client_secret": env.get("VCC_CLIENT_SECRET", ""),
        "region": env.get("VCC_REGION") or "emea",
        "api_url": env.get("VCC_API_URL", ""),
        "auth_url": env.get("VCC_AUTH_URL", ""),
    }
    values.update({k: v for k, v in overrides.items() if v is not None or k not in _FROM_ENV})
    if not values["client_id"] or not values["client_secret"]:
        raise InvalidRequestError("missing credentials: set VCC_CLIENT_ID and VCC_CLIENT_SECRET")
    return make_config(**values)

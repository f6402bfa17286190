"""Credentials per account, for backfills of many accounts: the environment, then a TOML file.

Tasks name their account and never carry secrets; whoever runs a task looks the account up:

* ``VCC_<ACCOUNT>_CLIENT_ID``, ``VCC_<ACCOUNT>_CLIENT_SECRET`` and optionally
  ``VCC_<ACCOUNT>_REGION``, ``VCC_<ACCOUNT>_API_URL``, ``VCC_<ACCOUNT>_AUTH_URL``, where
  ``<ACCOUNT>`` is the account name upper-cased with every other character than A-Z and 0-9
  turned into ``_`` (account ``acme-uk`` reads ``VCC_ACME_UK_CLIENT_ID``);
* else a TOML file, given as ``accounts_file`` or by ``VCCASYNC_ACCOUNTS``, with one table per
  account: ``[accounts.acme-uk]`` ``client_id = "..."`` ``client_secret = "..."``
  (``region``, ``api_url``, ``auth_url`` optional).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import InvalidRequestError

__all__ = ["FIELDS", "credentials", "env_prefix"]

FIELDS = ("client_id", "client_secret", "region", "api_url", "auth_url")


def env_prefix(account: str) -> str:
    """``VCC_<ACCOUNT>_``: the prefix of an account's variables."""
    return "VCC_" + re.sub(r"[^A-Z0-9]", "_", account.upper()) + "_"


def _from_file(account: str, path: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequestError(f"cannot read the accounts file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"the accounts file {path} is not valid TOML: {exc}") from None
    table = (data.get("accounts") or {}).get(account)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise InvalidRequestError(f"[accounts.{account}] in {path} is not a table")
    unknown = set(table) - set(FIELDS)
    if unknown:
        raise InvalidRequestError(
            f"[accounts.{account}] in {path} has unknown keys: {', '.join(sorted(unknown))}"
        )
    return {k: str(v) for k, v in table.items()}


def credentials(
    account: str,
    *,
    environ: Mapping[str, str] | None = None,
    accounts_file: str | Path | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``VccClient`` for ``account`` (client id and secret at least)."""
    env = os.environ if environ is None else environ
    prefix = env_prefix(account)
    found: dict[str, Any] | None = None
    if env.get(prefix + "CLIENT_ID"):
        found = {f: env[prefix + f.upper()] for f in FIELDS if env.get(prefix + f.upper())}
    else:
        path = accounts_file or env.get("VCCASYNC_ACCOUNTS")
        if path:
            found = _from_file(account, Path(path))
    if not found or not found.get("client_id") or not found.get("client_secret"):
        raise InvalidRequestError(
            f"no credentials for account {account!r}: set {prefix}CLIENT_ID and"
            f" {prefix}CLIENT_SECRET, or add [accounts.{account}] to the accounts file"
            " (VCCASYNC_ACCOUNTS)"
        )
    return found

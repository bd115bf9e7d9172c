"""Reading the TOML file and the environment into ``Settings``, with one-line errors.

Every failure becomes a ``ConfigError`` whose message names the key (``accounts[1].base_url: …``),
raised before anything touches the network.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from config.settings import Settings
from worker.errors import ConfigError
from worker.redact import register_secret

__all__ = ["config_path", "load_settings", "settings_from_mapping"]

DEFAULT_CONFIG = "recarchive.toml"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config``, else ``$RECARCHIVE_CONFIG``, else ``./recarchive.toml``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RECARCHIVE_CONFIG")
    return Path(env) if env else Path(DEFAULT_CONFIG)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    tokens_for: Collection[str] | None = None,
) -> Settings:
    """Load and validate the config file; tokens are read from the environment.

    ``tokens_for`` names the accounts whose secrets this command needs (``None``: every account).
    Auditing commands pass an empty set: they contact no vendor, so they read no token variable
    (CONTRACT §1) and run where the vendors' secrets are not.
    """
    file = config_path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {file} not found (use --config or RECARCHIVE_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(f"config file {file} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    return settings_from_mapping(data, environ, tokens_for=tokens_for)


def settings_from_mapping(data: Mapping[str, Any], environ: Mapping[str, str] | None = None, *,
                          tokens_for: Collection[str] | None = None) -> Settings:
    """Validate a parsed config and attach the secrets of the accounts in ``tokens_for`` (all when
    ``None``) from ``environ``; the others keep empty secrets and their variables are never read."""
    env = os.environ if environ is None else environ
    for index, account in enumerate(data.get("accounts") or []):
        if isinstance(account, Mapping) and "token" in account:
            raise ConfigError(
                f"config error: accounts[{index}].token: unknown key "
                "(secrets are read from the variable named by token_env, never from the file)"
            )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None
    accounts = []
    for index, account in enumerate(settings.accounts):
        if tokens_for is not None and account.name not in tokens_for:
            accounts.append(account)
            continue
        update = {"token": SecretStr(_secret(env, account.token_env, f"accounts[{index}].token_env", account.name))}
        if account.oauth_client_secret_env is not None:
            update["oauth_client_secret"] = SecretStr(_secret(
                env, account.oauth_client_secret_env, f"accounts[{index}].oauth_client_secret_env", account.name))
        accounts.append(account.model_copy(update=update))
    return settings.model_copy(update={"accounts": accounts})


def _secret(env: Mapping[str, str], variable: str, key: str, account: str) -> str:
    value = env.get(variable, "")
    if not value.strip():
        raise ConfigError(f"config error: {key}: environment variable {variable} is not set (account {account!r})")
    register_secret(value)
    if not value.isascii() or not value.isprintable():  # it goes in an HTTP header or query: never shown
        raise ConfigError(f"config error: {key}: environment variable {variable} holds non-ASCII or control "
                          f"characters, which no vendor token has (account {account!r}); check how it was set")
    return value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ""
    for part in error["loc"]:
        if isinstance(part, int):
            location += f"[{part}]"
        else:
            location += ("." if location else "") + str(part)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"config error: {location or 'config'}: {message}{more}"

"""An upstream's ``auth`` section: the credential this gateway presents, read from a file or
from the environment — never from the configuration file itself.

::

    auth: {type: basic, username: gateway, password_file: /run/secrets/pacs-password}
    auth: {type: basic, username_env: PACS_USER, password_env: PACS_PASSWORD}
    auth: {type: bearer, token_file: /run/secrets/pacs-token}
    auth: {type: bearer, token_env: PACS_TOKEN}

Rules, each a configuration problem with its field path when broken:

* an inline ``password`` or ``token`` is refused, whatever its value: a configuration file is
  committed, copied and shown; a secret file or variable is not;
* exactly one of ``*_file`` and ``*_env``; the file is read (at most 64 KiB of UTF-8, one
  trailing line break removed) and the variable looked up when the configuration is loaded,
  and again on every reload (SIGHUP), so rotating a secret is "write the file, send SIGHUP";
* no line break or control character anywhere (it would split the header); a basic user-id
  without ``:`` (RFC 7617); a bearer token in RFC 6750 ``token68`` characters;
* no problem message ever contains a secret: it names the field, the file or the variable.
"""

from __future__ import annotations

import os
import re

from routing.fields import Fields
from routing.model import AuthScheme, Credential, Secret

__all__ = ["parse_auth"]

_MAX_SECRET_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_SECRET_KEY = {AuthScheme.BASIC: "password", AuthScheme.BEARER: "token"}


def parse_auth(fields: Fields) -> Credential | None:
    """Read an ``auth`` section; None when it is absent or has problems (recorded in
    ``fields``)."""
    if not fields.valid:
        return None
    scheme = _scheme(fields)
    for key in _SECRET_KEY.values():
        if fields.has(key):
            fields.raw(key)
            fields.problem(
                key,
                "is refused: a secret is never written in the configuration; "
                f"use {key}_file or {key}_env",
            )
    for other, key in _SECRET_KEY.items():
        if other is not scheme and scheme is not None:
            _refuse_present(fields, (f"{key}_file", f"{key}_env"), f"only for type {other}")
    username = None
    if scheme is AuthScheme.BASIC:
        username = _username(fields)
    elif scheme is not None:
        _refuse_present(fields, ("username", "username_env"), "only for type basic")
    secret = None
    if scheme is not None:
        secret = _secret(fields, _SECRET_KEY[scheme], bearer=scheme is AuthScheme.BEARER)
    fields.finish()
    if scheme is None or secret is None or (scheme is AuthScheme.BASIC and username is None):
        return None
    text, source = secret
    return Credential(scheme=scheme, secret=Secret(text), username=username, source=source)


def _scheme(fields: Fields) -> AuthScheme | None:
    text = fields.text("type", required=True)
    if text is None:
        return None
    try:
        return AuthScheme(text.lower())
    except ValueError:
        fields.problem("type", f"must be one of {', '.join(s.value for s in AuthScheme)}")
        return None


def _refuse_present(fields: Fields, keys: tuple[str, ...], reason: str) -> None:
    for key in keys:
        if fields.has(key):
            fields.raw(key)
            fields.problem(key, reason)


def _username(fields: Fields) -> str | None:
    inline = fields.text("username")
    variable = fields.text("username_env")
    if (inline is None) == (variable is None):
        fields.problem("", "needs exactly one of username or username_env (type basic)")
        return None
    key = "username" if inline is not None else "username_env"
    value = inline if inline is not None else _from_environment(fields, key, variable or "")
    if value is None:
        return None
    if ":" in value:
        fields.problem(key, "must not contain ':' (RFC 7617 user-id)")
        return None
    if _CONTROL.search(value):
        fields.problem(key, "contains a line break or control character")
        return None
    return value


def _secret(fields: Fields, key: str, *, bearer: bool) -> tuple[str, str] | None:
    """``(secret, source)`` from ``{key}_file`` or ``{key}_env``."""
    path = fields.text(f"{key}_file")
    variable = fields.text(f"{key}_env")
    if path is not None and variable is not None:
        fields.problem("", f"{key}_file and {key}_env exclude each other")
        return None
    if path is None and variable is None:
        fields.problem("", f"needs one of {key}_file or {key}_env")
        return None
    if path is not None:
        where, value = f"{key}_file", _from_file(fields, f"{key}_file", path)
        source = f"{where} {path}"
    else:
        where = f"{key}_env"
        value = _from_environment(fields, where, variable or "")
        source = f"{where} {variable}"
    if value is None:
        return None
    if _CONTROL.search(value):
        fields.problem(where, "contains a line break or control character")
        return None
    if bearer and _TOKEN68.fullmatch(value) is None:
        fields.problem(where, "is not a bearer token (RFC 6750: letters, digits, -._~+/ then =)")
        return None
    return value, source


def _from_file(fields: Fields, key: str, path: str) -> str | None:
    if not os.path.isfile(path):  # also keeps a FIFO from blocking the load
        reason = "no such file" if not os.path.exists(path) else "not a regular file"
        fields.problem(key, f"cannot be read: {path!r} ({reason})")
        return None
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        fields.problem(key, f"cannot be read: {path!r} ({exc.strerror or type(exc).__name__})")
        return None
    if len(data) > _MAX_SECRET_BYTES:
        fields.problem(key, f"{path!r} is larger than {_MAX_SECRET_BYTES // 1024} KiB")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fields.problem(key, f"{path!r} is not UTF-8 text")
        return None
    text = text.removesuffix("\n").removesuffix("\r")  # the line break an editor adds
    if not text:
        fields.problem(key, f"is empty: {path!r}")
        return None
    return text


def _from_environment(fields: Fields, key: str, variable: str) -> str | None:
    value = os.environ.get(variable)
    if value is None:
        fields.problem(key, f"environment variable {variable} is not set")
        return None
    if not value:
        fields.problem(key, f"environment variable {variable} is empty")
        return None
    return value

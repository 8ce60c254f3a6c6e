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

:class:`AuthSettings` declares the section as written; reading it gives a :class:`Credential`.
"""

from __future__ import annotations

import base64
import enum
import os
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from routing.declare import FAILED, Report, setting
from routing.kinds import Choice, Text

__all__ = ["AuthScheme", "AuthSettings", "Credential", "Secret"]

_MAX_SECRET_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class Secret:
    """A password or token: compared and hashed by its text, never shown.

    ``repr``, ``str`` and formatting give ``<redacted>``, so a secret that reaches a log line,
    an exception or a problem document by accident says nothing; only :meth:`reveal` (used
    where the header is built) gives the text. Deliberately not a dataclass:
    ``dataclasses.asdict`` would turn one into a plain string.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def reveal(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    def __str__(self) -> str:
        return "<redacted>"

    def __format__(self, spec: str) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._text == self._text

    def __hash__(self) -> int:
        return hash((Secret, self._text))

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled")


class AuthScheme(enum.StrEnum):
    """HTTP authentication schemes a gateway can present to an upstream."""

    BASIC = "basic"  # RFC 7617, user-id and password in UTF-8
    BEARER = "bearer"  # RFC 6750


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """What this gateway presents to one upstream, read from a file or the environment when
    the configuration was loaded (and again on every reload).

    ``source`` says where the secret came from (``password_file /run/secrets/pacs``,
    ``token_env PACS_TOKEN``): safe to show an operator, unlike the secret.
    """

    scheme: AuthScheme
    secret: Secret
    username: str | None = None  # basic only
    source: str = ""

    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        if self.scheme is AuthScheme.BASIC:
            pair = f"{self.username}:{self.secret.reveal()}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return "Bearer " + self.secret.reveal()


_SECRET_KEY = {AuthScheme.BASIC: "password", AuthScheme.BEARER: "token"}
_PATH = Text(label="file path")
_VARIABLE = Text(label="variable name")


def _refusal(key: str) -> str:
    return (
        f"is refused: a secret is never written in the configuration; use {key}_file or {key}_env"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """The credential this gateway presents to the upstream (HTTP basic or bearer), read when
    the file is loaded and on every reload, from a file or an environment variable: a secret
    is never written in the configuration.

    Sent only to the upstream's own origins; it replaces any consumer ``Authorization``.
    """

    REFUSED_KEYS: ClassVar = MappingProxyType({k: _refusal(k) for k in _SECRET_KEY.values()})

    scheme: AuthScheme = setting(
        Choice.of(AuthScheme, fold=str.lower), "The HTTP scheme.", key="type", required=True
    )
    username: str | None = setting(Text(), "basic: the user-id (RFC 7617: no ':').", default=None)
    username_env: str | None = setting(
        _VARIABLE, "basic: the environment variable holding the user-id.", default=None
    )
    password_file: str | None = setting(
        _PATH, "basic: the file holding the password.", default=None
    )
    password_env: str | None = setting(
        _VARIABLE, "basic: the environment variable holding the password.", default=None
    )
    token_file: str | None = setting(_PATH, "bearer: the file holding the token.", default=None)
    token_env: str | None = setting(
        _VARIABLE, "bearer: the environment variable holding the token.", default=None
    )

    def finish(self, report: Report) -> Credential | object:
        """The credential, or FAILED with its problems recorded."""
        scheme = self.scheme
        for other, key in _SECRET_KEY.items():
            if other is not scheme:
                _refuse_given(report, (f"{key}_file", f"{key}_env"), f"only for type {other}")
        username = None
        if scheme is AuthScheme.BASIC:
            username = self._username(report)
        else:
            _refuse_given(report, ("username", "username_env"), "only for type basic")
        secret = self._secret(report, _SECRET_KEY[scheme], bearer=scheme is AuthScheme.BEARER)
        if secret is None or (scheme is AuthScheme.BASIC and username is None):
            return FAILED
        text, source = secret
        return Credential(scheme=scheme, secret=Secret(text), username=username, source=source)

    def _username(self, report: Report) -> str | None:
        inline, variable = self.username, self.username_env
        if (inline is None) == (variable is None):
            report.problem("", "needs exactly one of username or username_env (type basic)")
            return None
        key = "username" if inline is not None else "username_env"
        value = inline if inline is not None else _from_environment(report, key, variable or "")
        if value is None:
            return None
        if ":" in value:
            report.problem(key, "must not contain ':' (RFC 7617 user-id)")
            return None
        if _CONTROL.search(value):
            report.problem(key, "contains a line break or control character")
            return None
        return value

    def _secret(self, report: Report, key: str, *, bearer: bool) -> tuple[str, str] | None:
        """``(secret, source)`` from ``{key}_file`` or ``{key}_env``."""
        path: str | None = getattr(self, f"{key}_file")
        variable: str | None = getattr(self, f"{key}_env")
        if path is not None and variable is not None:
            report.problem("", f"{key}_file and {key}_env exclude each other")
            return None
        if path is None and variable is None:
            report.problem("", f"needs one of {key}_file or {key}_env")
            return None
        if path is not None:
            where, value = f"{key}_file", _from_file(report, f"{key}_file", path)
            source = f"{where} {path}"
        else:
            where = f"{key}_env"
            value = _from_environment(report, where, variable or "")
            source = f"{where} {variable}"
        if value is None:
            return None
        if _CONTROL.search(value):
            report.problem(where, "contains a line break or control character")
            return None
        if bearer and _TOKEN68.fullmatch(value) is None:
            report.problem(
                where, "is not a bearer token (RFC 6750: letters, digits, -._~+/ then =)"
            )
            return None
        return value, source


def _refuse_given(report: Report, keys: tuple[str, ...], reason: str) -> None:
    for key in keys:
        if report.given(key):
            report.problem(key, reason)


def _from_file(report: Report, key: str, path: str) -> str | None:
    if not os.path.isfile(path):  # also keeps a FIFO from blocking the load
        reason = "no such file" if not os.path.exists(path) else "not a regular file"
        report.problem(key, f"cannot be read: {path!r} ({reason})")
        return None
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        report.problem(key, f"cannot be read: {path!r} ({exc.strerror or type(exc).__name__})")
        return None
    if len(data) > _MAX_SECRET_BYTES:
        report.problem(key, f"{path!r} is larger than {_MAX_SECRET_BYTES // 1024} KiB")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        report.problem(key, f"{path!r} is not UTF-8 text")
        return None
    text = text.removesuffix("\n").removesuffix("\r")  # the line break an editor adds
    if not text:
        report.problem(key, f"is empty: {path!r}")
        return None
    return text


def _from_environment(report: Report, key: str, variable: str) -> str | None:
    value = os.environ.get(variable)
    if value is None:
        report.problem(key, f"environment variable {variable} is not set")
        return None
    if not value:
        report.problem(key, f"environment variable {variable} is empty")
        return None
    return value

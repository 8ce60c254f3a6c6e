"""Issue 14 item 8: every secret of the configuration comes from a file or an environment
variable, never from the file itself — checked over every declared key, so a new one cannot
slip in."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.service.config import SECTIONS
from routing.declare import default_of, refused_keys, settings_of
from routing.model import Config

SECRET_WORDS = re.compile(r"password|passphrase|token|secret|(^|_)key($|_)")


def keys(cls: type, path: str = "") -> Iterator[tuple[str, type]]:
    for key, field, declared in settings_of(cls):
        where = f"{path}.{key}" if path else key
        yield where, cls
        for suffix, nested, _ in declared.kind.nested(default_of(field, None)):
            yield from keys(nested, where + suffix)


def every_key() -> list[tuple[str, type]]:
    found = list(keys(Config))
    for name, cls in SECTIONS.items():
        found += keys(cls, name)
    return found


def test_every_secret_key_names_a_file_or_a_variable() -> None:
    secret_keys = [
        path for path, _ in every_key() if SECRET_WORDS.search(path.rsplit(".", 1)[-1])
    ]
    assert secret_keys  # the walk reaches them (auth, TLS keys)
    inline = [path for path in secret_keys if not path.endswith(("_file", "_env"))]
    assert inline == []


def test_inline_secrets_are_refused_with_a_reason() -> None:
    refused = {
        key: reason
        for _, cls in every_key()
        for key, reason in refused_keys(cls).items()
        if SECRET_WORDS.search(key)
    }
    assert set(refused) >= {"password", "token"}
    assert all("_file or" in reason and "_env" in reason for reason in refused.values())

"""Credentials out of everything the tool prints or writes (progress, errors, reports).

A location may carry them (`ftp://user:password@host/...`, a presigned `https://...?
X-Amz-Signature=...`), and a storage library's error text may repeat the location or a key
from the environment. `redact` replaces URL user information, the values of query
parameters that are credentials by name, and the value of every environment variable whose
name says it holds a secret (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ACCESS_KEY_ID,
...), with `***`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

__all__ = ["one_line", "redact"]

MASK = "***"
#: `scheme://userinfo@`: everything between `//` and `@` in the authority.
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
#: Query parameters that carry credentials (AWS/GCS/Azure presigned URLs, tokens, keys).
_QUERY = re.compile(
    r"([?&](?:x-amz-(?:signature|credential|security-token)|x-goog-(?:signature|credential)"
    r"|signature|sig|awsaccesskeyid|access_token|token|key|secret|password)=)[^&\s#\"']+",
    re.IGNORECASE,
)
#: Environment variables whose values are secrets, by name.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
#: Shorter values are not masked (they would mask ordinary words).
MIN_SECRET = 8


def redact(text: str) -> str:
    """`text` with every credential it shows replaced by `***`."""
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    for value in _secret_values():
        text = text.replace(value, MASK)
    return text


def _secret_values() -> list[str]:
    """Every record and message is masked: only the names are scanned each time (decoding
    every value of the environment took 165 of the 175 us a call cost)."""
    values = {os.environ.get(name, "") for name in _secret_names(tuple(os.environ))}
    # a secret that contains another goes first
    return sorted((v for v in values if len(v) >= MIN_SECRET), key=len, reverse=True)


@lru_cache(maxsize=8)
def _secret_names(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in names if _SECRET_NAME.search(name))


def one_line(text: str) -> str:
    """`text` with control characters (a newline in a file name...) escaped as Python writes
    them (\\n, \\x1b), so that one image is one line on stderr and in cron's mail."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

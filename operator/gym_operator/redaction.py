"""Secrets kept out of everything a worker writes: one redaction point for rows, files and logs.

A process registers the secrets it holds (the policy API key, S3 credentials, passwords in URLs)
once, when it loads them. The writers call `redact_text` / `redact_value` on what they are about
to write (rollout and failure parts, `_job.json`, termination messages), and `install_log_redaction`
makes every log record pass through `redact_text`, whichever logger or handler emits it. So a model
server that echoes the Authorization header back (in `usage`, an error body or an HTML page) cannot
get the key into the output, however the text travelled to the writer.

A secret is also redacted when only a prefix of it appears (at least PARTIAL_CHARS characters):
messages are cut to a length, and the cut may fall inside an echoed key.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MARK = "[redacted]"
MIN_SECRET_CHARS = 6
"""Shorter values are not treated as secrets (redacting them would garble ordinary text)."""
PARTIAL_CHARS = 8
"""A prefix of a secret this long, or longer, is redacted too."""
SECRET_ENV_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

_secrets: set[str] = set()
_ordered: list[str] = []
_factory_installed = False


def register(secret: str | None) -> None:
    """Redact `secret` (and its JSON-escaped form) from everything written from now on."""
    if not secret or len(secret) < MIN_SECRET_CHARS:
        return
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    for form in {secret, escaped}:
        if form not in _secrets:
            _secrets.add(form)
    _ordered[:] = sorted(_secrets, key=len, reverse=True)


def register_env(names: Iterable[str]) -> None:
    """Register the values of these environment variables (unset ones are skipped)."""
    for name in names:
        register(os.environ.get(name))


def register_url(url: str | None) -> None:
    """Register the password of a URL's userinfo, also as the Basic credentials sent for it."""
    if not url:
        return
    parts = urlsplit(url)
    if not parts.password:
        return
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password)}"
    register(unquote(parts.password))
    register(parts.password)
    register(base64.b64encode(credentials.encode()).decode())


def strip_userinfo(url: str) -> str:
    """`url` without `user:password@` (other URLs and non-URLs unchanged)."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """`text` with every registered secret, and every long enough prefix of one, replaced."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MARK)
        text = _redact_prefixes(text, secret)
    return text


def _redact_prefixes(text: str, secret: str) -> str:
    probe = secret[:PARTIAL_CHARS]
    if len(secret) <= PARTIAL_CHARS or probe not in text:
        return text
    out: list[str] = []
    pos = 0
    while (start := text.find(probe, pos)) >= 0:
        end, matched = start + len(probe), len(probe)
        while end < len(text) and matched < len(secret) and text[end] == secret[matched]:
            end, matched = end + 1, matched + 1
        out += [text[pos:start], MARK]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value with every string (keys included) passed through redact_text."""
    if not _ordered:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def active() -> bool:
    """Whether any secret is registered (writers may skip the work otherwise)."""
    return bool(_ordered)


def install_log_redaction() -> None:
    """Make every log record of this process redacted at creation (message, args, traceback)."""
    global _factory_installed
    if _factory_installed:
        return
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _ordered:
            _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit the format: keep neither raw
        message = f"{record.msg} (log arguments did not fit the format)"
    record.msg = redact_text(str(message))
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record.exc_info = None  # handlers render exc_text, never the raw exception again
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)

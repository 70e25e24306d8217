"""One line about a failure that is safe to show: never the exception's own text.

An Azure SDK exception's message can hold the whole response body (a
``DeserializationError`` quotes the JSON it could not read; an ``HttpResponseError``
quotes ARM's error message), and other exceptions can quote input values. Messages
built from exceptions keep only what this module extracts: the exception's type, the
HTTP status, the ARM or Key Vault error code and the request id, each checked to be a
short token. Duck-typed, so plain PostgreSQL scans need not import the Azure SDK.
"""

from __future__ import annotations

import re

# Error codes and request ids are short tokens; anything else is dropped rather than
# shown (a code field that carries prose is part of a body, not a code).
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,79}$")
_REQUEST_ID_HEADERS = ("x-ms-request-id", "x-ms-correlation-request-id")
# azure-core raises these (ValueError subclasses) when a response cannot be read.
_UNREADABLE = frozenset({"DeserializationError", "DecodeError", "JSONDecodeError"})


def _token(value: object) -> str | None:
    return value if isinstance(value, str) and _TOKEN.match(value) else None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (azure-core's ``status_code``), if any."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def error_code(exc: BaseException) -> str | None:
    """The ARM / Key Vault error code of an HTTP error, when it is a plain token."""
    return _token(getattr(getattr(exc, "error", None), "code", None))


def request_id(exc: BaseException) -> str | None:
    """The request id Azure gave the failed call, for a support ticket."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    for name in _REQUEST_ID_HEADERS:
        try:
            value = headers.get(name)
        except (AttributeError, TypeError):
            return None
        if found := _token(value):
            return found
    return None


def describe_failure(exc: BaseException) -> str:
    """``HTTP 403 AuthorizationFailed, request id …``, or the exception's type.

    The one way pgwarden turns an exception from the outside world into text. A
    response that could not be read says so; anything else is named by its type.
    """
    reason = getattr(exc, "safe_reason", None)
    if isinstance(reason, str):
        # pgwarden's own refusal (``azure.cloud.OffEndpointRequest``): text of its own.
        return reason
    status = http_status(exc)
    if status is not None:
        text = f"HTTP {status}"
        if code := error_code(exc):
            text += f" {code}"
        if rid := request_id(exc):
            text += f", request id {rid}"
        return text
    name = type(exc).__name__
    if name in _UNREADABLE:
        return f"the response could not be read ({name})"
    return name

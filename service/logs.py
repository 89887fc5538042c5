"""Structured logs: one JSON object per line, for the service's own loggers and uvicorn's.

No message text is logged by default. Request lines carry ids, route, status and timings;
an exception is logged with its type and stack but without its message, which could quote
a caller's text. `CONVINTEL_LOG_REDACTED_TEXT=true` (debugging only) adds the request's
message texts, with personal data redacted, to its request line."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

from service.settings import Settings

ACCESS_LOGGER = "convintel.access"


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...fields}` on one line. Extra fields come
    from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            payload.update(exception_fields(record.exc_info[1]))
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines (`CONVINTEL_LOG_JSON=false`), with the same rule for exceptions."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        return f"{line} {json.dumps(fields, default=str)}" if isinstance(fields, dict) else line

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        fields = exception_fields(ei[1])
        return f"{fields['error_type']} (message not logged)\n{fields['stack']}"


def exception_fields(exc: BaseException) -> dict[str, str]:
    """The exception's type and stack, without its message (it may quote request text)."""
    return {
        "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "stack": "".join(traceback.format_tb(exc.__traceback__)),
    }


def log_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the service and uvicorn (what `convintel serve`
    hands to uvicorn)."""
    level = settings.log_level.upper()
    formatter = (
        {"()": JsonFormatter}
        if settings.log_json
        else {"()": TextFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": level, "propagate": False}
            for name in ("convintel", "service", "nlp", "uvicorn", "uvicorn.error")
        },
    }

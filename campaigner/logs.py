"""Logging setup: one handler on stderr, configured once, from the CLI only.

Text by default; `--log-format json` (or CAMPAIGNER_LOG_FORMAT=json) writes one
JSON object per line: time, level, logger, event, message, then the record's
facts (campaign_id, run_id, status, matched, produced, failed, duration_s, ...).
Records carry ids and counts only, never recipients' data or secrets.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from campaigner.errors import ConfigurationError

TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LOG_FORMATS = ("text", "json")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Attributes every LogRecord has; whatever else a record holds came from `extra=`.
STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}


class StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is when a record is emitted (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with a stable `event` name and its facts."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(
    *,
    verbosity: int,
    log_format: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """WARNING by default so that a successful run under cron prints nothing;
    -v (or CAMPAIGNER_LOG_LEVEL=info) shows INFO, -vv DEBUG."""
    environ = os.environ if environ is None else environ
    level = chosen_level(verbosity, environ)
    kind = chosen_format(log_format, environ)
    root = logging.getLogger("campaigner")
    root.setLevel(logging.DEBUG if listeners(root) else level)
    client_level = logging.DEBUG if level <= logging.DEBUG else logging.CRITICAL + 1
    logging.getLogger("campaigner.librdkafka").setLevel(client_level)
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setLevel(level)
    handler.setFormatter(
        JsonFormatter()
        if kind == "json"
        else logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z")
    )


def chosen_level(verbosity: int, environ: Mapping[str, str]) -> int:
    if verbosity:
        return logging.INFO if verbosity == 1 else logging.DEBUG
    name = environ.get("CAMPAIGNER_LOG_LEVEL", "").strip().lower()
    if not name:
        return logging.WARNING
    if name not in LEVELS:
        raise ConfigurationError(
            f"CAMPAIGNER_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {name!r}"
        )
    return LEVELS[name]


def chosen_format(flag: str | None, environ: Mapping[str, str]) -> str:
    kind = (flag or environ.get("CAMPAIGNER_LOG_FORMAT", "") or "text").strip().lower()
    if kind not in LOG_FORMATS:
        raise ConfigurationError(
            f"CAMPAIGNER_LOG_FORMAT must be text or json, got {kind!r}"
        )
    return kind


def listeners(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if not isinstance(h, StderrHandler)]


def listen(handler: logging.Handler) -> None:
    """Let `handler` see every campaigner record (DEBUG included) while stderr
    keeps showing only the chosen level; for progress displays."""
    root = logging.getLogger("campaigner")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def stop_listening(handler: logging.Handler) -> None:
    root = logging.getLogger("campaigner")
    root.removeHandler(handler)
    stderr = [h.level for h in root.handlers if isinstance(h, StderrHandler)]
    root.setLevel(min(stderr) if stderr else logging.WARNING)

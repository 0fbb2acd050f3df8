"""Logging setup: one handler on stderr, configured once, from the CLI only."""

from __future__ import annotations

import logging
import sys

TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is when a record is emitted (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def setup(*, verbosity: int) -> None:
    """WARNING by default so that a successful run under cron prints nothing;
    -v shows INFO, -vv DEBUG."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger("campaigner")
    root.setLevel(level)
    client_level = logging.DEBUG if verbosity >= 2 else logging.CRITICAL + 1
    logging.getLogger("campaigner.librdkafka").setLevel(client_level)
    if not any(isinstance(handler, StderrHandler) for handler in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(
            logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z")
        )
        root.addHandler(handler)

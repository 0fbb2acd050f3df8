"""What both embedded servers share: loopback ports, package lookup, errors, log tails."""

from __future__ import annotations

import abc
import importlib.util
import os
import pathlib
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"
DEMO_HINT = "install the demo extra: pip install 'campaigner[demo]'"
LOG_TAIL_LINES = 20


class EmbeddedServerError(Exception):
    """An embedded server could not be found, started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def find_package_dir(name: str) -> pathlib.Path:
    """Return the directory of installed package `name` without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise EmbeddedServerError(f"package {name!r} is not installed; {DEMO_HINT}")
    return pathlib.Path(locations[0])


def log_tail(path: pathlib.Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def clean_env(drop: Callable[[str], bool]) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not drop(key)}


class ManagedServer(abc.ABC):
    """A server that a `with` block starts on entry and stops on exit."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

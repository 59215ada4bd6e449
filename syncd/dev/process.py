"""Run ``python -m syncd.dev.devserver`` as a child process: start, kill, restart on the same port.

The demo needs a secondary it can kill (SIGKILL) and bring back, which only
works when the database lives in another process. This is a small driver for
that child: it reads the ``listening ws://127.0.0.1:PORT/rpc`` line under a
deadline, keeps the port across restarts (retrying while the kernel still
holds it), sends the password through the environment (not visible in
``ps``), and appends the child's stderr to a log file. Whoever starts it
stops it: :meth:`DevServerProcess.stop` is idempotent and meant for a
``finally``.

A test and demo endpoint only (see :mod:`syncd.dev.devserver`).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from syncd.errors import SyncdError

__all__ = ["DevServerProcess", "DevServerStartError"]

_LISTENING = re.compile(rb"listening ws://127\.0\.0\.1:(\d+)/rpc\n")


class DevServerStartError(SyncdError):
    """The devserver child exited or stayed silent instead of listening."""


class DevServerProcess:
    """One devserver child on 127.0.0.1; ``start()`` again reuses the first port."""

    def __init__(
        self, store: str, *, user: str, password: str, log_path: Path, engine: int = 2
    ) -> None:
        """Configure only; nothing runs until :meth:`start`. ``engine``: 2 or 3."""
        self.store = store
        self.engine = engine
        self.log_path = log_path
        self._user = user
        self._password = password
        self._port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The port served (0 before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket RPC URL, as a config file writes it."""
        return f"ws://127.0.0.1:{self._port}/rpc"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 20.0) -> int:
        """Start the child and wait until it listens; return its pid.

        Raises:
            DevServerStartError: it exited or did not listen within ``timeout``
                (the message quotes the end of its log).
        """
        if self._proc is not None:
            raise RuntimeError("devserver already running")
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._spawn(deadline)
            except DevServerStartError as exc:
                # A restart can race the kernel releasing the old socket.
                if "in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _spawn(self, deadline: float) -> int:
        cmd = [sys.executable, "-m", "syncd.dev.devserver", "--store", self.store]
        cmd += ["--port", str(self._port), "--user", self._user, "--engine", str(self.engine)]
        env = dict(os.environ, SYNCD_DEVSERVER_PASS=self._password)
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env
            )
        self._proc = proc
        assert proc.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                self.kill()
                raise DevServerStartError(f"devserver did not listen in time: {self._log_tail()}")
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                self.kill()
                raise DevServerStartError(f"devserver exited at start: {self._log_tail()}")
            line += chunk
        match = _LISTENING.fullmatch(line)
        if match is None:
            self.kill()
            raise DevServerStartError(f"devserver said {line!r} instead of listening")
        self._port = int(match[1])
        return proc.pid

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return "(no log)"
        return " ".join(text.splitlines()[-1:]) or "(empty log)"

    def kill(self) -> None:
        """SIGKILL the child (a crash, as far as its clients can tell) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop cleanly (SIGTERM), or SIGKILL after ``timeout``; does nothing if not running."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        self.kill()

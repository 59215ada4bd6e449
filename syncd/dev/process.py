"""Run ``python -m syncd.dev.devserver`` as a child process: start, kill, freeze, restart.

The one driver of the dev server, for the demo, the tests and the benchmark.
A secondary that can be killed (SIGKILL), frozen (SIGSTOP) and brought back on
the same port only exists when the database lives in another process. The
driver reads the child's ``listening ws://127.0.0.1:PORT/rpc`` line under a
deadline, keeps the port across restarts (retrying while the kernel still
holds it), sends the password through the environment (not visible in
``ps``), and writes the child's stderr to a file (``log_path``, or a
temporary one read back into :attr:`DevServerProcess.stderr` when it exits):
a file, not a pipe, so a chatty child can never block on a full pipe buffer.
Whoever starts a child stops it (:meth:`DevServerProcess.stop` is idempotent
and meant for a ``finally``); an ``atexit`` hook kills any left behind.

A test and demo endpoint only (see :mod:`syncd.dev.devserver`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from syncd.errors import SyncdError

__all__ = ["DevServerProcess", "DevServerStartError"]

_LISTENING = re.compile(rb"listening ws://127\.0\.0\.1:(\d+)/rpc\n")
_LIVE: set[DevServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.kill()


class DevServerStartError(SyncdError):
    """The devserver child exited or stayed silent instead of listening."""

    def __init__(self, message: str, returncode: int | None, stderr: str) -> None:
        """Keep the exit code (None: still running when we gave up) and its stderr."""
        tail = " ".join(stderr.strip().splitlines()[-1:]) or "(no output)"
        super().__init__(f"{message} (exit code {returncode}): {tail}")
        self.returncode = returncode
        self.stderr = stderr


class DevServerProcess:
    """One devserver child on 127.0.0.1; ``start()`` again reuses the first port."""

    def __init__(
        self,
        store: str = "mem://",
        *,
        user: str = "root",
        password: str = "root",
        engine: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        """Configure only; nothing runs until :meth:`start` (or ``with``).

        ``engine``: 2 or 3; None leaves it to ``SYNCD_DEVSERVER_ENGINE``
        (default 2). ``log_path``: append the child's stderr there; None: keep
        it in :attr:`stderr`.
        """
        self.store, self.user, self.password, self.engine = store, user, password, engine
        self.log_path = log_path
        self._port = 0  # 0 until the first start picked one
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._stderr = ""
        self._frozen = False
        self._returncode: int | None = None  # of the last reaped child

    @property
    def port(self) -> int:
        """The port served (kept across restarts)."""
        if not self._port:
            raise RuntimeError("devserver was never started")
        return self._port

    @property
    def url(self) -> str:
        """The SDK's URL, ``ws://127.0.0.1:PORT``."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        """The WebSocket RPC URL as a config file writes it, ``ws://127.0.0.1:PORT/rpc``."""
        return f"{self.url}/rpc"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def stderr(self) -> str:
        """The last child's stderr once it has exited (empty with a ``log_path``)."""
        return self._stderr

    def start(self, timeout: float = 20.0) -> DevServerProcess:
        """Start the child and wait until it listens; return self.

        Raises:
            DevServerStartError: it exited or did not listen within ``timeout``.
        """
        if self._proc is not None:
            raise RuntimeError("devserver already running")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._spawn(deadline)
                return self
            except DevServerStartError as exc:
                # A restart can race the kernel releasing the old socket.
                if "in use" not in exc.stderr or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _spawn(self, deadline: float) -> None:
        # SYNCD_DEVSERVER_PYTHON: the interpreter that serves (the compatibility
        # tests' environment has an SDK whose embedded engine is not the 2.3.10
        # the devserver serves; the project's own environment has it).
        python = os.environ.get("SYNCD_DEVSERVER_PYTHON") or sys.executable
        cmd = [python, "-m", "syncd.dev.devserver", "--store", self.store]
        cmd += ["--port", str(self._port), "--user", self.user]
        if self.engine is not None:
            cmd += ["--engine", str(self.engine)]
        env = dict(os.environ, SYNCD_DEVSERVER_PASS=self.password)  # not in argv/ps
        # Outlives this call (read back in _reap), so no `with`.
        self._stderr_file = (
            tempfile.TemporaryFile()  # noqa: SIM115
            if self.log_path is None
            else self.log_path.open("ab")
        )
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
            start_new_session=True,  # signals sent to it never reach our own group
        )
        _LIVE.add(self)
        assert self._proc.stdout is not None
        fd, line = self._proc.stdout.fileno(), b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                raise DevServerStartError("devserver did not listen in time", None, self._said())
            chunk = os.read(fd, 256)
            if not chunk:  # EOF: it is exiting; wait so the real exit code is reported
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(5)
                self.kill()
                raise DevServerStartError(
                    "devserver exited at start", self._returncode, self._said()
                )
            line += chunk
        match = _LISTENING.fullmatch(line)
        if match is None:
            self.kill()
            raise DevServerStartError(f"devserver said {line!r}", None, self._said())
        self._port = int(match[1])

    def _said(self) -> str:
        """What the last child wrote to stderr (its log file's end with a ``log_path``)."""
        if self.log_path is None:
            return self._stderr
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _reap(self) -> int | None:
        """Wait for the exited child, collect stderr, close pipes and files."""
        if self._proc is None:
            return self._returncode
        code = self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._stderr_file is not None:
            if self.log_path is None:
                self._stderr_file.seek(0)
                self._stderr = self._stderr_file.read().decode(errors="replace")
            self._stderr_file.close()
            self._stderr_file = None
        self._proc, self._frozen, self._returncode = None, False, code
        _LIVE.discard(self)
        return code

    def _signal(self, sig: signal.Signals) -> None:
        # poll() is None means the pid is not reaped yet, so it is still ours.
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the child (a crash, as far as its clients can tell; works while
        frozen too) and reap it."""
        self._signal(signal.SIGKILL)
        self._reap()

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, and assert a clean exit: code 0 and no Rust panic."""
        self.thaw()  # a stopped process would not act on SIGTERM
        self._signal(signal.SIGTERM)
        assert self._proc is not None, "devserver is not running"
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"devserver ignored SIGTERM for {timeout}s") from None
        code = self._reap()
        assert code == 0, f"devserver exited {code}; stderr:\n{self._stderr}"
        assert "panicked" not in self._stderr, self._stderr

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts TCP but nothing is answered."""
        self._signal(signal.SIGSTOP)
        self._frozen = self._proc is not None

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`; a no-op otherwise."""
        if self._frozen:
            self._signal(signal.SIGCONT)
            self._frozen = False

    def restart(self, timeout: float = 20.0) -> DevServerProcess:
        """Stop (if running) and start again on the same port and store."""
        self.stop()
        return self.start(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop cleanly (SIGTERM), or SIGKILL after ``timeout``; idempotent. Returns the
        exit code, if any."""
        if self._proc is None:
            return self._returncode
        self.thaw()
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
        return self._reap()

    def __enter__(self) -> DevServerProcess:
        """Start (if not yet) and return self."""
        return self if self._proc is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

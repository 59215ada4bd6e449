"""Drive ``python -m syncd.dev.devserver`` as a real, separate process for tests.

Tests need to kill, freeze and restart "the database", which only works when it
lives in another process. Every process started here is stopped by its owner,
and an atexit hook kills any that a crashed test left behind.
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
from types import TracebackType
from typing import IO

_LIVE: set[ServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.kill()


class ServerStartError(RuntimeError):
    """The devserver exited or stayed silent instead of listening."""

    def __init__(self, message: str, returncode: int | None, stderr: str) -> None:
        """Keep the exit code (None: still running when we gave up) and stderr."""
        super().__init__(f"{message} (exit code {returncode}); stderr:\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


class ServerProcess:
    """One devserver subprocess on 127.0.0.1; ``restart()`` keeps its port."""

    def __init__(
        self,
        store: str = "mem://",
        user: str = "root",
        password: str = "root",
        engine: int | None = None,
    ) -> None:
        """Configure only; call :meth:`start` or use ``with``.

        ``engine``: 2 or 3; None leaves it to ``SYNCD_DEVSERVER_ENGINE`` (default 2).
        """
        self.store, self.user, self.password, self.engine = store, user, password, engine
        self._port = 0  # 0 until the first start picked one
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._stderr = ""
        self._frozen = False
        self._proc_returncode: int | None = None  # of the last reaped process

    @property
    def port(self) -> int:
        """The port the server listens on (kept across restarts)."""
        if not self._port:
            raise RuntimeError("server was never started")
        return self._port

    @property
    def url(self) -> str:
        """SDK URL, ``ws://127.0.0.1:PORT``."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The current process id, or None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def stderr(self) -> str:
        """Stderr of the last process, once it has exited."""
        return self._stderr

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Spawn the server and wait for its ``listening`` line; return self.

        Retries "address in use" until ``timeout``: a restart may race the
        kernel releasing the previous process's socket.
        """
        if self._proc is not None:
            raise RuntimeError("already running")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._spawn(deadline)
                return self
            except ServerStartError as exc:
                if "in use" not in exc.stderr or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _spawn(self, deadline: float) -> None:
        cmd = [sys.executable, "-m", "syncd.dev.devserver", "--store", self.store]
        cmd += ["--port", str(self._port), "--user", self.user]
        if self.engine is not None:
            cmd += ["--engine", str(self.engine)]
        env = dict(os.environ, SYNCD_DEVSERVER_PASS=self.password)  # not in argv/ps
        # Outlives this call (read back in _reap), so no `with`; a file, not a pipe,
        # so a chatty server can never block on a full pipe buffer.
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
            start_new_session=True,  # signals we send never hit pytest's group
        )
        _LIVE.add(self)
        assert self._proc.stdout is not None
        fd, line = self._proc.stdout.fileno(), b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                raise ServerStartError("devserver did not listen in time", None, self._stderr)
            chunk = os.read(fd, 256)
            if not chunk:  # EOF: it is exiting; wait so we report its real exit code
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(5)
                self.kill()
                code = self._proc_returncode
                raise ServerStartError("devserver exited at start", code, self._stderr)
            line += chunk
        match = re.fullmatch(rb"listening ws://127\.0\.0\.1:(\d+)/rpc\n", line)
        if match is None:
            self.kill()
            raise ServerStartError(f"unexpected stdout {line!r}", None, self._stderr)
        self._port = int(match[1])

    def _reap(self) -> int | None:
        """Wait for the exited process, collect stderr, close pipes and files."""
        if self._proc is None:
            return self._proc_returncode
        code = self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._stderr_file is not None:
            self._stderr_file.seek(0)
            self._stderr = self._stderr_file.read().decode(errors="replace")
            self._stderr_file.close()
            self._stderr_file = None
        self._proc, self._frozen, self._proc_returncode = None, False, code
        _LIVE.discard(self)
        return code

    def _signal(self, sig: signal.Signals) -> None:
        # poll() is None means the pid is not reaped yet, so it is still ours.
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the server (works while frozen too) and wait for it."""
        self._signal(signal.SIGKILL)
        self._reap()

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, and assert a clean exit: code 0 and no Rust panic."""
        self.thaw()  # a stopped process would not act on SIGTERM
        self._signal(signal.SIGTERM)
        assert self._proc is not None, "server is not running"
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

    def restart(self, timeout: float = 20.0) -> ServerProcess:
        """Stop (if running) and start again on the same port and store."""
        self.stop()
        return self.start(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop however needed; idempotent. Returns the exit code, if any."""
        if self._proc is None:
            return self._proc_returncode
        self.thaw()
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
        return self._reap()

    def __enter__(self) -> ServerProcess:
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

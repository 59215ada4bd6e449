"""systemd's notify protocol, spoken directly over ``NOTIFY_SOCKET``.

A notification is one datagram of ``KEY=VALUE`` lines to a unix socket (an
abstract one when the path starts with ``@``). Talking to it directly keeps
errors visible; the old ``sdnotify`` package swallows them. Outside systemd
(no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("syncd.service.sdnotify")


class Notifier:
    """Sends ``READY=1``, ``STOPPING=1``, ``WATCHDOG=1`` and ``STATUS=...``."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # The watchdog is meant for us only if no other pid was named.
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval: float | None = (
            int(usec) / 1e6 / 2 if usec.isdigit() and int(usec) > 0 and mine else None
        )

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening."""
        return bool(self._address)

    def send(self, **fields: str) -> None:
        """Send one notification, e.g. ``send(READY="1", STATUS="running")``."""
        if not self._address:
            return
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self._address)
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc), fields=sorted(fields))

    def ready(self, status: str) -> None:
        """Every component has started."""
        self.send(READY="1", STATUS=status)

    def stopping(self, status: str) -> None:
        """The drain begins."""
        self.send(STOPPING="1", STATUS=status)

    def watchdog(self) -> None:
        """The event loop is alive."""
        self.send(WATCHDOG="1")

    def status(self, text: str) -> None:
        """A one-line status for ``systemctl status``."""
        self.send(STATUS=text)

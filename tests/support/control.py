"""Helpers for the pause and resume tests: POST to an endpoint, find a non-loopback address."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import urllib.error
import urllib.request
from typing import Any


def post(url: str, token: str | None = None, method: str = "POST") -> tuple[int, Any]:
    """Send ``method`` to ``url`` (with a bearer ``token``): ``(status, decoded JSON or text)``."""
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read().decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, or ``None`` (then skip)."""
    candidates: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
        candidates += out.stdout.split()
    with contextlib.suppress(OSError):
        candidates += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    for candidate in candidates:
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if ip.version == 4 and not ip.is_loopback and _bindable(candidate):
            return candidate
    return None


def _bindable(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True

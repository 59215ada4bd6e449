"""``POST /pause`` and ``POST /resume`` on the HTTP endpoint: who may, and what they get.

Rules of this file:

- these requests change what the daemon does, so they answer only clients on
  a loopback address (127.0.0.0/8, ::1) — unless ``control_token`` is set:
  then *every* client, loopback too, must present ``Authorization: Bearer
  <token>``. A reachable ``metrics_listen`` must not let a scraper, or anyone
  on its network, stop replication;
- anything else gets 403, one ``control_refused`` warning with the client's
  address and the reason, and a count in ``syncd_control_refused_total``. The
  token presented is never logged nor echoed, and is compared in constant time;
- ``?secondary=NAME`` names one secondary (absent: every one); an unknown name
  is 404. A change answers 200 with ``{"secondary", "paused", "since"}`` (with
  several secondaries: ``{"secondaries": [...]}``).

Requests arrive on the endpoint's threads; the change itself runs on the
event loop (:meth:`syncd.service.pausing.PauseControl.from_thread`).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from urllib.parse import parse_qs
from wsgiref.types import WSGIEnvironment

import structlog
from pydantic import SecretStr

from syncd.errors import SyncdError, UnknownSecondary
from syncd.metrics import Metrics

__all__ = ["ControlEndpoint", "is_loopback", "refusal"]

log = structlog.get_logger("syncd.service.control")

Answer = tuple[str, dict[str, object]]
#: ``change(action, secondary or None)``: the states after the change, run on the event loop.
Change = Callable[[str, str | None], list[dict[str, object]]]


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a client's IP, as the server saw it) is a loopback address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return ip.is_loopback


def refusal(client: str, authorization: str | None, token: str) -> tuple[str, str] | None:
    """``(reason label, why)`` when the request must be refused, else ``None``. Pure.

    ``token`` is the configured ``control_token`` (empty: none configured).
    """
    if not token:
        if is_loopback(client):
            return None
        return "not_loopback", "not a loopback client, and no control_token is configured"
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return "no_token", "no bearer token presented (control_token is configured)"
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return "wrong_token", "the bearer token presented is not control_token"
    return None


class ControlEndpoint:
    """The ``control`` callback of :class:`~syncd.service.httpserver.HttpEndpoint`."""

    def __init__(self, change: Change, token: SecretStr, metrics: Metrics) -> None:
        """Call ``change`` for the clients ``token`` (or a loopback address) lets in."""
        self._change = change
        self._token = token
        self._metrics = metrics

    def __call__(self, action: str, environ: WSGIEnvironment) -> Answer:
        """Answer a POST to ``/pause`` or ``/resume``: ``(HTTP status line, JSON body)``."""
        client = str(environ.get("REMOTE_ADDR", ""))
        refused = refusal(client, environ.get("HTTP_AUTHORIZATION"), self._token.get_secret_value())
        if refused is not None:
            label, why = refused
            self._metrics.control_refused.labels(label).inc()
            log.warning("control_refused", action=action, client=client, reason=why)
            return "403 Forbidden", {"error": f"refused: {why}"}
        names = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        secondary = names.get("secondary", [None])[-1]
        try:
            states = self._change(action, secondary)
        except UnknownSecondary as exc:
            return "404 Not Found", {"error": str(exc)}
        except SyncdError as exc:  # state_dir cannot take the pause file: nothing changed
            log.error("control_failed", action=action, error=str(exc))
            return "500 Internal Server Error", {"error": str(exc)}
        log.info("control_request", action=action, secondary=secondary, client=client)
        if len(states) == 1:
            return "200 OK", states[0]
        return "200 OK", {"secondaries": states}

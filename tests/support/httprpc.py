"""An HTTP ``/rpc`` endpoint in front of a devserver, for the SDK's HTTP connections.

The devserver speaks WebSocket ``/rpc`` only. The SDK's HTTP client POSTs one
CBOR request frame per call with ``Surreal-NS``/``Surreal-DB`` headers; this
forwards each over one WebSocket (after a ``use`` of those headers, as the
engine has one session) and answers with the reply's bytes. A test endpoint.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cbor2
from websockets.sync.client import connect


@contextlib.contextmanager
def http_rpc(ws_url: str) -> Iterator[str]:
    """Serve ``http://127.0.0.1:PORT`` forwarding to the devserver at ``ws_url``; yield it."""
    with connect(f"{ws_url}/rpc", subprotocols=["cbor"], max_size=None) as ws:  # type: ignore[list-item]
        lock = threading.Lock()

        def forward(frame: bytes, ns: str | None, db: str | None) -> bytes:
            with lock:
                if ns or db:
                    ws.send(cbor2.dumps({"id": "syncd-use", "method": "use", "params": [ns, db]}))
                    ws.recv()
                ws.send(frame)
                answer = ws.recv()
            return answer if isinstance(answer, bytes) else answer.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ns, db = self.headers.get("Surreal-NS"), self.headers.get("Surreal-DB")
                answer = forward(body, ns, db)
                self.send_response(200)
                self.send_header("Content-Type", "application/cbor")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

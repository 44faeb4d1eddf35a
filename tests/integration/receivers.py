"""Real receivers on loopback for the response tests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from custodes.respond.actions import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@contextmanager
def signed_webhook_receiver(key: bytes) -> Iterator[tuple[str, queue.Queue]]:
    """An HTTP server that checks each POST's HMAC signature: 204 if good, 401 if not.

    Yields its URL and a queue of ``(signature_good, json_body)``.
    """
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            good = verify(key, self.headers[TIMESTAMP_HEADER], body, self.headers[SIGNATURE_HEADER])
            received.put((good, orjson.loads(body)))
            self.send_response(204 if good else 401)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()

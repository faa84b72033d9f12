"""What the local instance runs at its `lokiUrl`: an answer, not a Loki.

No Loki runs locally (it needs object storage and real nodes; the local instance stays
small). The gateway still serves each tenant's `loki.<tenant>...` endpoint, checks the
token and forwards: this server answers every request with 503 and a line saying why,
rather than leaving the endpoint to refuse connections or hang.
"""

from __future__ import annotations

import http.server
from typing import Final

STATUS: Final = 503
MESSAGE: Final = (
    "no Loki runs in the local instance (make up): its logs endpoints answer 503; logs are "
    "served by an instance on AWS (make up STACK=dev)\n"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # a pushed body, read so that the connection stays usable
        body = MESSAGE.encode()
        self.send_response(STATUS)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer  # noqa: N815 (the server's names)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a try-out's requests need no log."""


def server(port: int) -> http.server.ThreadingHTTPServer:
    """The server, bound to 127.0.0.1:`port` (`serve_forever` answers)."""
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)


def serve(port: int) -> None:
    """Answer on 127.0.0.1:`port` until the process is stopped."""
    with server(port) as bound:
        bound.serve_forever()

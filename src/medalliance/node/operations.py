"""A node's operations endpoint: `GET /healthz`, `/status` and `/metrics` over plain HTTP.

Like Fabric's operations service, it is what load balancers, `network up` and `network status`
poll, and what Prometheus scrapes (`/metrics`, node/metrics.py). A node is healthy while it
serves and its status lists no `problems`. It is served by the standard library's threading HTTP
server on its own thread, so a busy event loop never makes a live node look dead; it exposes no
ledger data beyond heights and hashes: `/status?state_hash=1` adds, per channel, the last block
header hash and the world-state hash at that height, for the integrity monitor (docs/audit.md).
Those answers need the node's event loop, so at most `STATE_HASH_CONCURRENCY` are in progress at
once; more concurrent ones are refused at once (503, `Retry-After`) rather than queued on the
loop: a flood of them must not delay commits or the health checks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from medalliance.errors import Unavailable

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text format
# The integrity monitor asks each peer once per round: two in progress leave room for a second
# monitor (the other commission's) and refuse a flood without queuing it.
STATE_HASH_CONCURRENCY = 2


class OperationsServer:
    """`metrics` renders `/metrics`; `ledgers` answers `/status?state_hash=1` (peers only)."""

    def __init__(
        self,
        address: str,
        status: Callable[[], dict[str, Any]],
        *,
        metrics: Callable[[], bytes] | None = None,
        ledgers: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self.healthy = False
        self._status = status
        self._hashing = threading.BoundedSemaphore(STATE_HASH_CONCURRENCY)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path == "/metrics" and metrics is not None:
                    self._send_bytes(200, METRICS_CONTENT_TYPE, metrics())
                    return
                if url.path == "/status" and query.get("state_hash") == ["1"]:
                    if ledgers is None:
                        self._send(404, {"error": "this node keeps no world state; use /status"})
                        return
                    if not outer._hashing.acquire(blocking=False):
                        self._send(
                            503,
                            {"error": "busy with other ledger digest requests; try again"},
                            retry_after=1,
                        )
                        return
                    try:
                        answer = ledgers()
                    except Exception:  # the node is stopping, or hashing took too long
                        log.warning("ledger digests not available", exc_info=True)
                        self._send(503, {"error": "ledger digests not available; try again"})
                        return
                    finally:
                        outer._hashing.release()
                    self._send(200, {**outer._status(), "ledgers": answer})
                    return
                if self.path == "/healthz":
                    problems = outer.problems()
                    ok = outer.healthy and not problems
                    body: dict[str, Any] = {"status": "OK" if ok else "SERVICE_UNAVAILABLE"}
                    if problems:
                        body["problems"] = problems
                    self._send(200 if ok else 503, body)
                elif self.path == "/status":
                    status = outer._status()
                    healthy = outer.healthy and not status.get("problems")
                    self._send(200, {**status, "healthy": healthy})
                else:
                    self._send(
                        404,
                        {
                            "error": f"no such path {url.path[:64]}; use /healthz, /status or /metrics"
                        },
                    )

            def _send(
                self, code: int, body: dict[str, Any], *, retry_after: int | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self._send_bytes(code, "application/json", data, retry_after=retry_after)

            def _send_bytes(
                self, code: int, content_type: str, data: bytes, *, retry_after: int | None = None
            ) -> None:
                self.send_response(code)
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # polled every few hundred ms; not worth a log line

        bind = "127.0.0.1" if host == "localhost" else host
        try:
            self._server = ThreadingHTTPServer((bind, int(port)), Handler)
        except OSError as exc:
            raise Unavailable(
                f"cannot serve operations on {address}: {exc.strerror}; "
                "stop what uses it or set operations_port in the network config"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def problems(self) -> list[str]:
        """What the node reports wrong with itself (`problems` in its status): a node that
        is up but cannot do its work (e.g. its consensus halted) must not look healthy."""
        found = self._status().get("problems") or []
        return [str(p) for p in found]

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

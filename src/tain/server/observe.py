"""ASGI middleware that measures every HTTP request as it ends: its route template,
status, bytes in and out and duration (for ``/metrics``), and counts downloads and
push bytes into the site's usage counters (for ``tain stats``).

A file download is marked by the route (``scope["tain.file"] = (path, size)``); the
bytes counted are those actually sent: body messages, or the Content-Length of a
response the server sends itself (ASGI path-send). A presigned redirect to S3 counts
as a download of the whole file.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tain.monitor.metrics import HttpMetrics
from tain.service.usage import Usage

FILE_ROUTE = "/{repo}/{path:path}"
UPLOAD_ROUTES = frozenset({"/api/v1/repos/{repo}/chunks", FILE_ROUTE})
FILE_MARK = "tain.file"


class _Tally:
    def __init__(self) -> None:
        self.status = 500
        self.received = 0
        self.sent = 0
        self.declared = 0


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, http: HttpMetrics, usage: Usage) -> None:
        self.app, self.http, self.usage = app, http, usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tally = _Tally()
        started = time.perf_counter()

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                tally.received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                tally.status = int(message["status"])
                tally.declared = _content_length(message.get("headers", ()))
            elif kind == "http.response.body":
                tally.sent += len(message.get("body", b""))
            elif kind in ("http.response.pathsend", "http.response.zerocopysend"):
                tally.sent += tally.declared
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            self._record(scope, tally, time.perf_counter() - started)

    def _record(self, scope: Scope, tally: _Tally, seconds: float) -> None:
        route = scope.get("route")
        template = str(getattr(route, "path", "")) or "(unmatched)"
        method = str(scope.get("method", ""))
        self.http.observe(template, method, tally.status, tally.received, tally.sent, seconds)
        repo = str((scope.get("path_params") or {}).get("repo", ""))
        if not repo or tally.status >= 400:
            return
        mark: Any = scope.get(FILE_MARK)
        if mark is not None and method == "GET":
            path, size = mark
            if tally.status == 200:
                self.usage.download(repo, path, tally.sent)
            elif tally.status == 206:
                self.usage.download(repo, path, tally.sent, whole=False)
            elif tally.status == 302:  # sent to a presigned S3 URL
                self.usage.download(repo, path, int(size))
        elif method in ("POST", "PUT") and template in UPLOAD_ROUTES and tally.received:
            self.usage.received(repo, tally.received)


def _content_length(headers: Any) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0

"""A small real HTTP proxy in front of a site that rewrites some answers: an attacker
(or a broken mirror) between a client and the bytes it trusts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import free_port, wait_healthy

Rewrite = Callable[[str, bytes], bytes]  # (request path, body) -> body to send


@contextmanager
def rewriting_proxy(upstream: str, rewrite: Rewrite,
                    delay: Callable[[str], float] | None = None) -> Iterator[str]:
    """``delay(path)``: seconds to hold a request before forwarding it (a slow link;
    other requests go on meanwhile)."""
    client = httpx.AsyncClient(base_url=upstream, timeout=90)

    async def forward(request: Request) -> Response:
        if delay is not None:
            await asyncio.sleep(delay(request.url.path))
        answer = await client.request(
            request.method, request.url.path, params=request.query_params,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            content=await request.body())
        body = rewrite(request.url.path, answer.content)
        headers = {k: v for k, v in answer.headers.items()
                   if k.lower() not in ("content-length", "content-encoding",
                                        "transfer-encoding")}
        return Response(body, status_code=answer.status_code, headers=headers)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "HEAD", "POST"])],
                    lifespan=lifespan)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)

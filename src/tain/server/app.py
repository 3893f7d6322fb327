"""The ASGI application of a site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

import tain
from tain.mirror.lifecycle import start_replication
from tain.server.errors import install_error_handlers
from tain.server.routes import admin, agents, files, mirror, push, repos, status
from tain.service.scheduler import site_scheduler
from tain.service.site import Site, recover


def create_app(site: Site, *, worker_threads: int = 40) -> FastAPI:
    """Build the app over an open site. Startup repairs the published trees; scheduled
    scrubs and backups run in a background thread while the app runs."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = worker_threads
        await run_in_threadpool(recover, site)
        scheduler = site_scheduler(site)  # [scrub] every, [backup] every
        scheduler.start()
        stop_replication = await run_in_threadpool(start_replication, site)  # docs/mirrors.md
        try:
            yield
        finally:
            await run_in_threadpool(stop_replication)
            await run_in_threadpool(scheduler.stop)

    app = FastAPI(
        title="tain site", version=tain.__version__, lifespan=lifespan,
        openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None,
    )
    app.state.site = site
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    app.include_router(admin.router)
    app.include_router(repos.router)
    app.include_router(push.router)
    app.include_router(agents.router)
    app.include_router(status.router)
    app.include_router(mirror.router)
    app.include_router(files.router)  # last: it matches every /{repo}/{path}
    return app

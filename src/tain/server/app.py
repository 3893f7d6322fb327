"""The ASGI application of a site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

import tain
from tain.mirror.facts import site_facts
from tain.mirror.lifecycle import start_replication
from tain.server import console
from tain.server.errors import install_error_handlers
from tain.server.monitoring import install_monitoring
from tain.server.routes import admin, agents, files, mirror, push, repos, sites, sources, status
from tain.server.routing import prepare_routes
from tain.service.scheduler import site_scheduler
from tain.service.site import Site, recover
from tain.sources.facts import source_facts
from tain.sources.scheduler import SourceScheduler


def create_app(site: Site, *, worker_threads: int = 40) -> FastAPI:
    """Build the app over an open site. Startup repairs the published trees; scheduled
    scrubs and backups run in a background thread while the app runs."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = worker_threads
        await run_in_threadpool(recover, site)
        scheduler = site_scheduler(site)  # [scrub] every, [backup] every
        scheduler.start()
        monitoring.start(jobs=lambda: scheduler.results)  # usage flushes, alert checks
        if health:
            health.start()  # [[sites]]: health checks of the other sites
        app.state.source_scheduler = source_scheduler = SourceScheduler(site)
        await run_in_threadpool(source_scheduler.start)  # pull sources (docs/sources.md)
        stop_replication = await run_in_threadpool(start_replication, site)  # docs/mirrors.md
        try:
            yield
        finally:
            await run_in_threadpool(stop_replication)
            await run_in_threadpool(source_scheduler.stop)
            await run_in_threadpool(scheduler.stop)
            await run_in_threadpool(monitoring.stop)
            if health:
                await run_in_threadpool(health.stop)

    app = FastAPI(
        title="tain site", version=tain.__version__, lifespan=lifespan,
        openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None,
    )
    app.state.site = site
    install_error_handlers(app)
    monitoring = install_monitoring(app, site)  # /metrics, /api/v1/stats, /api/v1/alerts

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    app.include_router(admin.router)
    app.include_router(repos.router)
    app.include_router(push.router)
    app.include_router(agents.router)
    app.include_router(status.router)
    health = sites.install(app, site)  # /api/v1/sites; /dl/ with [redirector] enabled
    if health:
        monitoring.providers.add_sites(lambda: site_facts(site))  # site_down, site_stale
    monitoring.providers.add_jobs(lambda: source_facts(site))  # job_failed
    console.install(app, site)  # /console/
    app.include_router(sources.router)
    app.include_router(mirror.router)
    app.include_router(files.router)  # last: it matches every /{repo}/{path}
    prepare_routes(app)  # build now, not on first use: see tain.server.routing
    return app

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
from tain.mirror.lifecycle import Replication
from tain.mirror.remote import upstream_source
from tain.server import console
from tain.server.background import Task, running
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
        # [scrub] every, [backup] every; a mirror's scrubs repair from its upstream
        scheduler = site_scheduler(site, remote=lambda: upstream_source(site))
        app.state.source_scheduler = pulls = SourceScheduler(site)
        replication = Replication(site)  # docs/mirrors.md
        tasks = [
            Task("scheduled jobs", scheduler.start, scheduler.stop),
            Task("monitoring", lambda: monitoring.start(jobs=lambda: scheduler.results),
                 monitoring.stop),  # usage flushes, alert checks
            *([Task("health checks", health.start, health.stop)] if health else []),
            Task("pull sources", pulls.start, pulls.stop),  # docs/sources.md
            Task("replication", replication.start, replication.stop),
        ]
        async with running(tasks):  # stopped in reverse, also after a failed start
            yield

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

    health = sites.install(app, site)  # /api/v1/sites; /dl/ (first: matched cheaply)
    app.include_router(admin.router)
    app.include_router(repos.router)
    app.include_router(push.router)
    app.include_router(agents.router)
    app.include_router(status.router)
    if health:
        monitoring.providers.add_sites(lambda: site_facts(site))  # site_down, site_stale
    monitoring.providers.add_jobs(lambda: source_facts(site))  # job_failed
    console.install(app, site)  # /console/
    app.include_router(sources.router)
    app.include_router(mirror.router)
    app.include_router(files.router)  # last: it matches every /{repo}/{path}
    prepare_routes(app)  # build now, not on first use: see tain.server.routing
    return app

"""Build every route of the app before it serves, and its OpenAPI schema under a lock.

Since FastAPI 0.137, ``include_router`` is lazy: an included router makes its routes
(the dependants, the request and response fields) on the first request it has to
match, and the OpenAPI schema is made on the first request for it. Making a field
enters ``warnings.catch_warnings()``, which on Python < 3.14 swaps the process-wide
warning filters. Two threads doing that at once (several event loops in one process,
as the tests run sites, or the event loop and a worker thread) interleave the swaps: a
filter one of them set is lost or leaks for good, so a warning FastAPI meant to
silence escapes (a 500 where warnings are errors, as under pytest) or later warnings
vanish.

``prepare_routes`` builds every route once, in the thread that creates the app, so no
request does it, and makes the schema's first build hold a lock that every such build
in the process shares.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

_BUILD_LOCK = threading.Lock()  # one FastAPI build at a time in the whole process


def prepare_routes(app: FastAPI) -> int:
    """Build every route now and guard the schema build; returns how many routes."""
    with _BUILD_LOCK:
        count = sum(1 for _ in iter_route_contexts(app.routes))
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with _BUILD_LOCK:
                return build_schema()  # caches it in app.openapi_schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return count

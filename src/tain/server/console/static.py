"""The console's own CSS and JavaScript (with the vendored htmx and Chart.js): served
from the package, never from a CDN."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from tain.errors import NotFound
from tain.server.console.state import STATIC

router = APIRouter()
TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get("/static/{name:path}")
def static_file(name: str) -> FileResponse:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file() \
            or path.suffix not in TYPES:
        raise NotFound(f"no console file {name!r}")
    return FileResponse(path, media_type=TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})

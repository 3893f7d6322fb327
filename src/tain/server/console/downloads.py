"""Downloads of a private repository's files from the console: its mirror URLs need a
token, which a browser does not send, so the console serves the files itself to a
viewer who can read the repository (see ``urls.download_url``)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tain.core.manifest import Kind
from tain.core.paths import name_of, normalize_path
from tain.errors import NotFound
from tain.server.console.render import ConsoleRoute
from tain.server.console.viewer import ViewerDep
from tain.server.download import file_response

router = APIRouter(route_class=ConsoleRoute)


@router.get("/repos/{name}/file")
def download(request: Request, name: str, path: str, viewer: ViewerDep,
             rev: int | None = None) -> Response:
    viewer.repo(name)
    site = viewer.state.site
    clean = normalize_path(path)
    entry = site.catalog.lookup(name, clean, rev)
    if entry is None or entry.kind is not Kind.FILE or entry.sha256 is None:
        raise NotFound(f"no file {clean} in {name}" + (f" at revision {rev}" if rev else ""))
    sha = entry.sha256
    filename = name_of(clean)
    return file_response(
        request, opener=lambda: site.store.open(sha), size=entry.size, sha256=sha,
        mtime_ns=entry.mtime_ns, filename=filename,
        extra_headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                       "Cache-Control": "private, no-store",
                       "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )

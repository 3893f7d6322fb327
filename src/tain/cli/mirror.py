"""Mirror commands: ``tain promote``, ``tain repo rotate-key``, the verified download
behind ``tain get --verify``, and the mirror section of ``tain status``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from tain.cli.admin import repo_app
from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt
from tain.cli.output import emit_json, say, timestamp
from tain.core.units import human_size


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
    repo_app.command("rotate-key")(rotate_key)


def promote(
    site_dir: Annotated[Path, typer.Argument(help="The mirror's site directory.")],
    new_root: Annotated[bool, typer.Option(
        help="Start a new key chain with this site's own key (clients must re-pin).")] = False,
) -> None:
    """Make a stopped mirror the primary: it stops following and accepts pushes, keeping
    every revision it holds. Copy the old primary's signing key in first (see
    docs/mirrors.md), or use --new-root. A running site: POST /api/v1/mirror/promote."""
    from tain.config import load
    from tain.service.promote import promote as promote_site
    from tain.service.site import open_site

    site = open_site(load(site_dir, os.environ))
    try:
        result = promote_site(site, actor="tain-promote", new_root=new_root)
    finally:
        site.close()
    say(f"{site_dir} is now a primary (was a mirror of {result['was_mirror_of']}); "
        f"signing key {result['key_fingerprint']}"
        + (" (a NEW root: clients must pin it)" if result["new_root"] else ""))


def rotate_key(
    repo: Annotated[str | None, typer.Argument(
        help="Any repository of the site (the key is the site's: all rotate).")] = None,
    site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Replace the site's signing key; the old key signs the hand-over (admin)."""
    from tain.mirror.upstream import UpstreamClient

    client = UpstreamClient(site, token or None)
    with contextlib.closing(client):
        if repo:
            client.get_repo(repo)
        body = client.rotate_key()
    if as_json:
        emit_json(body)
        return
    say(f"new signing key {body['fingerprint']} (rotation {body['seq']}, signed by the "
        "previous key); clients pinned to an older key follow the chain")


def verified_get(site: str, token: str | None, repo: str, path: str, dest: Path | None,
                 pinned: str, state_file: Path | None) -> str:
    """Download with every check of tain.mirror.verify; the file appears only when all
    pass. Returns a one-line summary."""
    from tain.mirror.upstream import UpstreamClient
    from tain.mirror.verify import HeadMemory, default_state_file, verified_download

    memory = HeadMemory(state_file or default_state_file(os.environ))
    client = UpstreamClient(site, token)
    with contextlib.closing(client):
        if dest is None:
            result = verified_download(client, repo, path, typer.get_binary_stream("stdout"),
                                       pinned=pinned, memory=memory)
            return f"verified {path} at revision {result.revision}"
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                result = verified_download(client, repo, path, out, pinned=pinned,
                                           memory=memory)
            os.replace(name, dest)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)
    return (f"{path} -> {dest} ({human_size(result.size)}), verified: revision "
            f"{result.revision}, sha256 {result.sha256}")


def show_mirror(body: dict[str, Any]) -> None:
    """The compact mirror section of ``tain status`` (from ``/api/v1/mirror``)."""
    if not body.get("mirror_of"):
        return
    say(f"mirror of {body['mirror_of']}")
    for t in body.get("traces") or []:
        lag = int(t["upstream_head"]) - int(t["revision"])
        when = timestamp(t["last_success_at"]) if t.get("last_success_at") else "never"
        line = (f"  {t['repo']}: revision {t['revision']} (upstream {t['upstream_head']}, "
                f"lag {lag}), last sync {when}, {human_size(int(t['last_bytes']))} in "
                f"{float(t['last_duration']):.2f}s")
        error = t.get("last_error")
        if error == "deleted upstream":
            say(line + ", deleted upstream: no longer followed, still served")
        else:
            say(line + (f", ERROR: {error}" if error else ""))

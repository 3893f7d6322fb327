"""Site commands that run on the site's own machine: ``tain init`` and ``tain serve``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tain.config import load
from tain.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``serve`` to the main application."""
    app.command("init")(init)
    app.command("serve")(serve)


def init(
    site_dir: Annotated[Path, typer.Argument(help="Directory to create the site in.")],
    listen: Annotated[str, typer.Option(help="HOST:PORT the site will listen on.")] = (
        "127.0.0.1:8080"
    ),
    admin: Annotated[str, typer.Option(help="Name of the first admin user.")] = "admin",
    mirror_of: Annotated[str | None, typer.Option(
        help="Make this site a mirror of the site at this URL.")] = None,
    token: Annotated[str | None, typer.Option(
        help="The upstream read token to write into the config (with --mirror-of).")] = None,
    token_env: Annotated[str | None, typer.Option(
        help="Name of the environment variable holding the upstream token instead.")] = None,
    key: Annotated[str | None, typer.Option(
        help="Pin the upstream's signing key (fingerprint or base64 public key; "
             "with --mirror-of).")] = None,
) -> None:
    """Create a site: config file, signing key, catalog, and an admin user and token."""
    from tain.config_mirror import check_key, mirror_section
    from tain.service.setup import create_site  # the engines load only for this command

    if (token or token_env or key) and not mirror_of:
        raise UsageError("--token, --token-env and --key go with --mirror-of")
    check_key(key)
    if mirror_of and not mirror_of.startswith(("http://", "https://")):
        raise UsageError(f"--mirror-of must be an http(s):// URL, not {mirror_of!r}")
    secret = create_site(site_dir, listen=listen, admin=admin, env=os.environ)
    if mirror_of:
        config = site_dir / "tain.toml"
        config.write_text(config.read_text() + mirror_section(mirror_of, token, token_env, key))
        typer.echo(f"mirror of {mirror_of}: it follows the upstream while 'tain serve' runs")
    typer.echo(f"created site in {site_dir.resolve()}")
    typer.echo(f"admin user: {admin}")
    typer.echo(f"admin token (shown once, keep it safe): {secret}")
    typer.echo(f"start it with: tain serve {site_dir}")


def serve(
    site_dir: Annotated[Path, typer.Argument(help="The site directory (from 'tain init').")],
    listen: Annotated[str | None, typer.Option(help="HOST:PORT, overrides the config.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS.")] = None,
    workers: Annotated[int, typer.Option(help="Worker threads for blocking work.")] = 40,
) -> None:
    """Run the site: API, downloads, pushes, published trees."""
    import uvicorn

    from tain.server.app import create_app

    config = load(site_dir, os.environ)
    host, _, port = (listen or config.listen).rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--listen must be HOST:PORT, not {listen or config.listen!r}")
    cert = tls_cert or config.tls_cert
    key = tls_key or config.tls_key
    if bool(cert) != bool(key):
        raise UsageError("TLS needs both a certificate and a key")
    from tain.service.site import open_site

    site = open_site(config)
    app = create_app(site, worker_threads=workers)
    scheme = "https" if cert else "http"
    typer.echo(f"tain site {config.site_dir} serving on {scheme}://{host}:{port}/", err=True)
    uvicorn.run(
        app, host=host.strip("[]"), port=int(port), log_level="warning",
        ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None,
        timeout_graceful_shutdown=10,
    )
    site.close()

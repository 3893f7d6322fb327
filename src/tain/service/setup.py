"""Creating a new site directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tain.config import CONFIG_NAME, default_config_text, load
from tain.core.signing import new_private_key_pem
from tain.errors import UsageError
from tain.service.auth import new_token
from tain.service.site import open_site


def create_site(
    site_dir: Path, *, listen: str, admin: str, env: Mapping[str, str] | None = None
) -> str:
    """Write config and signing key, create the catalog and the first admin user.
    Returns the admin's token secret (it is stored only as a hash)."""
    if (site_dir / CONFIG_NAME).exists():
        raise UsageError(f"{site_dir} already holds a site", hint="choose an empty directory")
    site_dir.mkdir(parents=True, exist_ok=True)
    keys = site_dir / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(keys / "signing.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(new_private_key_pem())
    (site_dir / CONFIG_NAME).write_text(default_config_text(listen))
    site = open_site(load(site_dir, env or {}))
    try:
        site.catalog.create_user(admin, is_admin=True, actor="tain-init")
        secret, digest = new_token()
        site.catalog.create_token(admin, name="init", token_hash=digest, expires_at=None,
                                  actor="tain-init")
    finally:
        site.close()
    return secret

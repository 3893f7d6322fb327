"""Promote: a mirror becomes the primary, keeping every revision it holds.

Signing needs a key that clients trust. A mirror cannot make one up: the operator
copies the old primary's current key file to this site's key file (``[server]
signing_key``) before promoting, and clients verify as before. When that key is lost,
``new_root`` starts a new key chain with the mirror's own key; clients that pinned the
old key then refuse this site until they pin the new one (deliberately: nothing else
could tell a promoted mirror from an impostor).
"""

from __future__ import annotations

from typing import Any

from tain.config import CONFIG_NAME
from tain.core.signing import fingerprint, load_private_key
from tain.core.statements import Rotation
from tain.errors import Conflict
from tain.service.site import Site


def promote(site: Site, *, actor: str, new_root: bool = False) -> dict[str, Any]:
    if site.mirror_of is None:
        raise Conflict("this site is already a primary: it follows no upstream")
    site.key = load_private_key(site.config.key_file.read_bytes())  # maybe copied in
    chain = site.catalog.key_chain()
    holds_key = bool(chain) and chain[-1].new == site.public_key
    if not holds_key and not new_root:
        current = fingerprint(chain[-1].new) if chain else "unknown"
        raise Conflict(
            f"this site's key file is not the primary's current key ({current})",
            hint=f"copy the primary's signing key to {site.config.key_file}, or promote "
                 "with --new-root (clients must then pin the new key)")
    if not holds_key:
        site.catalog.set_key_chain([Rotation(0, None, site.public_key, site.clock())],
                                   actor=actor)
    upstream = site.mirror_of
    stop_following(site)
    site.catalog.record_event(actor, "site.promote", "site", upstream=upstream,
                              new_root=not holds_key, key=fingerprint(site.public_key))
    for repo in site.catalog.list_repos():
        site.on_change.run(repo.name)
    return {"promoted": True, "was_mirror_of": upstream, "new_root": not holds_key,
            "key_fingerprint": fingerprint(site.public_key)}


def stop_following(site: Site) -> None:
    """Clear the mirror role in memory and in tain.toml (the [mirror] table is kept,
    commented out, so the change is visible and reversible)."""
    site.mirror_of = None
    path = site.config.site_dir / CONFIG_NAME
    out, inside = [], False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped in ("[mirror]",)
            if inside:
                out.append("# promoted to primary: this site no longer follows")
        out.append(f"# {line}" if inside and stripped else line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(out) + "\n")
    tmp.replace(path)

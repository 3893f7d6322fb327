"""``tain get --verify``: a download from an untrusted site, checked end to end.

1. the key chain, followed from the pinned key (fingerprint or public key);
2. the head statement: signed by a trusted key, not expired (freeze attack), and not
   older than the revision this client last saw for the repository on any site
   (rollback attack; kept in a small JSON state file);
3. the manifest at that revision: its SHA-256 must be the statement's (forged
   manifest), and it gives the file's SHA-256;
4. the file's bytes: their SHA-256 must be the manifest's (tampered file).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tain.core.manifest import entry_from_json
from tain.core.statements import HeadStatement, follow_chain, head_from_json, verify_head
from tain.errors import IntegrityError, NotFound
from tain.mirror.upstream import UpstreamClient


def default_state_file(env: dict[str, str] | os._Environ[str]) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tain" / "verified-heads.json"


@dataclass(frozen=True)
class Verified:
    revision: int
    sha256: str
    size: int


class HeadMemory:
    """The newest revision seen per repository (keyed by key fingerprint and repo, so
    two sites serving the same signed repository share one memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, int]:
        try:
            return {str(k): int(v) for k, v in json.loads(self.path.read_text()).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, AttributeError) as exc:
            raise IntegrityError(f"the state file {self.path} is damaged",
                                 hint="remove it (rollback protection restarts)") from exc

    def check_and_remember(self, root: str, head: HeadStatement) -> None:
        seen = self._load()
        key = f"{root}/{head.repo}"
        if seen.get(key, 0) > head.revision:
            raise IntegrityError(
                f"rollback: the site offers revision {head.revision} of {head.repo}, but "
                f"revision {seen[key]} was seen before", hint="the site serves an old state")
        seen[key] = head.revision
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(seen, sort_keys=True))
        os.replace(tmp, self.path)


def verified_download(client: UpstreamClient, repo: str, path: str, out: IO[bytes], *,
                      pinned: str, memory: HeadMemory,
                      clock: Callable[[], float] = time.time) -> Verified:
    chain = client.key_chain()
    trusted = follow_chain(pinned, chain)
    head = head_from_json(client.head(repo))
    key = next((k for k in trusted if _fp(k) == head.key), None)
    if key is None:
        raise IntegrityError(f"the head statement of {repo} is signed by key {head.key}, "
                             "which the pinned key does not lead to")
    verify_head(key, head, now=clock())
    memory.check_and_remember(_fp(trusted[0]), head)
    digest, wanted = hashlib.sha256(), None
    for line in client.manifest_lines(repo, head.revision):
        digest.update(line)
        raw = json.loads(line)
        if raw.get("path") == path:
            wanted = entry_from_json(raw)
    if digest.hexdigest() != head.manifest_digest:
        raise IntegrityError(f"the manifest of {repo}@{head.revision} does not match the "
                             "signed head statement: it is forged")
    if wanted is None or not wanted.sha256:
        raise NotFound(f"{path} is not a file in {repo} at revision {head.revision}")
    got = client.download_unchecked(repo, path, head.revision, out)
    if got != wanted.sha256:
        raise IntegrityError(f"{path}: the bytes hash to {got}, the signed manifest says "
                             f"{wanted.sha256}: the file was tampered with")
    return Verified(head.revision, wanted.sha256, wanted.size)


def _fp(public_text: str) -> str:
    from tain.core.signing import fingerprint

    return fingerprint(public_text)

"""The follower's and verifier's view of a site: the replication endpoints on top of
``SiteClient`` (revision log, blobs with resumable Range reads, events, manifests,
head statements, the key chain)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

import httpx

from tain.client import API, SiteClient, _file_url, _repo_api
from tain.core.statements import Rotation, rotation_from_json
from tain.errors import DigestMismatch, RemoteError

BLOCK = 1 << 20
RESUMES = 3


class UpstreamClient(SiteClient):
    def log(self, repo: str, since: int, *, max_bytes: int = 8 << 20) -> dict[str, Any]:
        return dict(self._get(f"{_repo_api(repo)}/log", since=since, max_bytes=max_bytes))

    def events(self, since: int, timeout: float) -> dict[str, Any]:
        return dict(self._get(f"{API}/events", since=since, timeout=timeout))

    def head(self, repo: str) -> dict[str, Any]:
        return dict(self._get(f"{_repo_api(repo)}/head"))

    def key_chain(self) -> list[Rotation]:
        body = self._get(f"{API}/keys")
        return [rotation_from_json(raw) for raw in body.get("chain", [])]

    def rotate_key(self) -> dict[str, Any]:
        return dict(self._json("POST", f"{API}/keys/rotate"))

    def promote(self, *, new_root: bool = False) -> dict[str, Any]:
        return dict(self._json("POST", f"{API}/mirror/promote",
                               params={"new_root": "true" if new_root else None}))

    def download_unchecked(self, repo: str, path: str, rev: int, out: IO[bytes]) -> str:
        """A file's bytes into ``out``; returns their SHA-256, computed here, for the
        caller to check against a digest it trusts (no header is believed)."""
        digest = hashlib.sha256()
        response = self._send("GET", _file_url(repo, path), params={"rev": rev}, stream=True,
                              follow_redirects=True)
        try:
            for block in response.iter_bytes(BLOCK):
                digest.update(block)
                out.write(block)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        finally:
            response.close()
        return digest.hexdigest()

    def manifest_lines(self, repo: str, rev: int | None = None) -> Iterator[bytes]:
        """The canonical manifest, line by line (each with its newline)."""
        response = self._send("GET", f"{_repo_api(repo)}/manifest", params={"rev": rev},
                              stream=True)
        try:
            buffered = b""
            for block in response.iter_bytes(BLOCK):
                buffered += block
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    yield line + b"\n"
            if buffered:
                yield buffered
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        finally:
            response.close()

    def fetch_blob(self, sha256: str, out: IO[bytes]) -> int:
        """Write the blob's bytes to ``out``, resuming with Range after a broken
        connection; the SHA-256 of everything written must be ``sha256``."""
        digest, written = hashlib.sha256(), 0
        for attempt in range(RESUMES + 1):
            headers = {"Range": f"bytes={written}-"} if written else {}
            try:
                response = self._send("GET", f"{API}/blobs/{quote(sha256)}", stream=True,
                                      headers=headers)
                try:
                    if written and response.status_code != 206:
                        raise RemoteError("the upstream ignored a Range request")
                    for block in response.iter_bytes(BLOCK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
                finally:
                    response.close()
                break
            except httpx.HTTPError as exc:
                if attempt == RESUMES:
                    raise self._unreachable(exc) from exc
        if digest.hexdigest() != sha256:
            raise DigestMismatch(f"blob {sha256} from {self.base_url} hashes to "
                                 f"{digest.hexdigest()}: the upstream sent wrong bytes",
                                 hint="the blob is not stored; fix the upstream's copy")
        return written

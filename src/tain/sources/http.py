"""The HTTP upstream: walk its directory listings (or read a SHA256SUMS file list),
then download what changed into the job's staging tree.

Every request stays under the base URL: listings yield only direct children and
redirects are not followed. A file already staged is asked for conditionally (its
ETag and Last-Modified from the last download); a new one goes to a ``.part`` file
that a later run resumes with ``Range`` and ``If-Range``. A file with a published
SHA-256 is checked before it replaces the staged copy. Index files are downloaded
after all others, so even the staging tree never holds an index newer than its files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from tain import __version__
from tain.core.paths import ancestors, normalize_path
from tain.core.sourcepolicy import IndexMatcher
from tain.core.sourcespec import SourceSpec
from tain.errors import DigestMismatch, InvalidPath, RemoteError
from tain.sources.listing import parse_listing, parse_sha256sums
from tain.sources.state import JobState, Validators

MAX_ENTRIES = 2_000_000
Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str
    url: str
    sha256: str | None = None


@dataclass
class Listing:
    files: dict[str, RemoteFile]
    dirs: set[str]


@dataclass
class FetchStats:
    files: int = 0
    bytes: int = 0


class HttpUpstream:
    def __init__(self, spec: SourceSpec, state: JobState, *, cancel: threading.Event,
                 log: Log, transport: httpx.BaseTransport | None = None) -> None:
        self.spec, self.state, self.cancel, self.log = spec, state, cancel, log
        self._client = httpx.Client(
            timeout=spec.timeout_seconds, follow_redirects=False, transport=transport,
            headers={"User-Agent": f"tain/{__version__} (pull source)"})
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- listing ---------------------------------------------------------------------

    def list_files(self) -> Listing:
        if self.spec.http_mode == "sha256sums":
            return self._list_sums()
        return self._walk()

    def _walk(self) -> Listing:
        listing = Listing({}, set())
        sums: dict[str, str] = {}
        pending = [""]
        while pending:
            prefix = pending.pop()
            page = self.spec.url + quote(prefix)
            response = self._get(page)
            for child in parse_listing(response.text, response.headers.get("content-type", ""),
                                       page):
                path = self._path(prefix + child.name)
                if path is None:
                    continue
                if child.is_dir:
                    listing.dirs.add(path)
                    pending.append(path + "/")
                else:
                    listing.files[path] = RemoteFile(path, self.spec.url + quote(path))
                    if child.name == "SHA256SUMS":
                        sums.update(parse_sha256sums(self._get(page + "SHA256SUMS").text,
                                                     prefix))
                if len(listing.files) + len(listing.dirs) > MAX_ENTRIES:
                    raise RemoteError(f"the upstream lists more than {MAX_ENTRIES} entries")
        self.log(f"listed {len(listing.files)} files in {len(listing.dirs) + 1} directories"
                 f" ({len(sums)} with published SHA-256)")
        listing.files = {p: RemoteFile(p, f.url, sums.get(p)) for p, f in listing.files.items()}
        return listing

    def _list_sums(self) -> Listing:
        base, _, name = self.spec.url.rpartition("/")
        sums = parse_sha256sums(self._get(self.spec.url).text)
        files = {p: RemoteFile(p, f"{base}/{quote(p)}", sha) for p, sha in sums.items()}
        files[name] = RemoteFile(name, self.spec.url)
        dirs = {a for p in files for a in ancestors(p)}
        self.log(f"{name} lists {len(sums)} files")
        return Listing(files, dirs)

    def _path(self, raw: str) -> str | None:
        try:
            return normalize_path(raw)
        except InvalidPath as exc:
            self.log(f"skipped {raw!r}: {exc}")
            return None

    def _get(self, url: str) -> httpx.Response:
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the upstream at {url}: {exc}") from exc
        if response.status_code != 200:
            raise RemoteError(f"GET {url}: HTTP {response.status_code}"
                              + (" (redirects are not followed)"
                                 if response.is_redirect else ""))
        return response

    # -- downloads -------------------------------------------------------------------

    def fetch(self, listing: Listing) -> FetchStats:
        """Download every new or changed file: data files first, index files last."""
        is_index = IndexMatcher(self.spec.index_patterns)
        files = sorted(listing.files.values(), key=lambda f: f.path)
        stats = FetchStats()
        for stage in ([f for f in files if not is_index(f.path)],
                      [f for f in files if is_index(f.path)]):
            self._fetch_all(stage, stats)
        self.state.commit()
        return stats

    def _fetch_all(self, files: Iterable[RemoteFile], stats: FetchStats) -> None:
        with ThreadPoolExecutor(max_workers=self.spec.parallel) as pool:
            for got in pool.map(self._fetch_one, files):
                if got is not None:
                    stats.files += 1
                    stats.bytes += got

    def _fetch_one(self, remote: RemoteFile) -> int | None:
        """Bytes downloaded, or None when the staged copy is current."""
        if self.cancel.is_set():
            raise RemoteError("the run was cancelled (the site is stopping)")
        dest = self.state.tree / remote.path
        part = self.state.parts / (quote(remote.path, safe="") + ".part")
        headers = _conditional(self.state.validators(remote.path)) if dest.is_file() else {}
        offset = part.stat().st_size if part.exists() else 0
        part_validators = self.state.validators("\0part\0" + remote.path)
        if offset and part_validators and (part_validators.etag or part_validators.last_modified):
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = part_validators.etag or part_validators.last_modified or ""
        try:
            with self._client.stream("GET", remote.url, headers=headers) as response:
                if response.status_code == 304:
                    return None
                if response.status_code not in (200, 206):
                    raise RemoteError(f"GET {remote.url}: HTTP {response.status_code}")
                found = Validators(response.headers.get("etag"),
                                   response.headers.get("last-modified"))
                self.state.remember_validators("\0part\0" + remote.path, found)
                got = self._save(response, part, append=response.status_code == 206)
        except httpx.HTTPError as exc:
            raise RemoteError(f"downloading {remote.url} failed: {exc}") from exc
        _verify(part, remote)
        _place(part, dest, self.state.tree, found.last_modified)
        self.state.remember_validators(remote.path, found)
        return got

    def _save(self, response: httpx.Response, part: Path, *, append: bool) -> int:
        got = 0
        with part.open("ab" if append else "wb") as out:
            for block in response.iter_bytes(1 << 20):
                if self.cancel.is_set():
                    raise RemoteError("the run was cancelled (the site is stopping)")
                out.write(block)
                got += len(block)
        return got

    def prune(self, listing: Listing) -> int:
        """Remove staged paths the upstream no longer lists; returns how many files."""
        removed = 0
        for root, dirnames, filenames in os.walk(self.state.tree, topdown=False):
            rel = os.path.relpath(root, self.state.tree)
            prefix = "" if rel == "." else rel + "/"
            for name in filenames:
                if prefix + name not in listing.files:
                    os.unlink(os.path.join(root, name))
                    removed += 1
            for name in dirnames:
                full = os.path.join(root, name)
                if prefix + name not in listing.dirs:
                    shutil.rmtree(full) if not os.path.islink(full) else os.unlink(full)
        return removed


def _conditional(known: Validators | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if known and known.etag:
        headers["If-None-Match"] = known.etag
    if known and known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    return headers


def _verify(part: Path, remote: RemoteFile) -> None:
    if remote.sha256 is None:
        return
    with part.open("rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual != remote.sha256:
        part.unlink()
        raise DigestMismatch(f"{remote.path}: the upstream sent bytes with SHA-256 "
                             f"{actual[:16]}..., its SHA256SUMS says {remote.sha256[:16]}...")


def _place(part: Path, dest: Path, root: Path, last_modified: str | None) -> None:
    if last_modified:
        try:
            stamp = parsedate_to_datetime(last_modified).timestamp()
            os.utime(part, (stamp, stamp))
        except (TypeError, ValueError, OverflowError):
            pass
    _clear_path_for(dest, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)


def _clear_path_for(dest: Path, root: Path) -> None:
    """A directory where a file now goes (or a file where a directory goes) inside the
    staging tree ``root`` is removed."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    for parent in dest.parents:
        if parent == root:
            break
        if parent.is_symlink() or parent.is_file():
            parent.unlink()
            break

"""An HTTP upstream (real nginx with autoindex on loopback) mirrored by a site: HTML and
JSON listings, conditional requests, index files last, SHA256SUMS checks, resume."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx

from tain.sources.jobs import add_job
from tain.sources.runner import staging_root
from tain.sources.state import JobState, Validators
from tests.sources.upstreams import empty_dir, local_site, nginx, run_once, tree_digests, write_tree

FILES = {
    "repodata/repomd.xml": b"<repomd/>",
    "Packages/a.rpm": os.urandom(200_000),
    "Packages/b.rpm": b"b" * 5000,
    "space name.txt": b"spaces survive",
    "sub/dir/deep.bin": b"deep",
}


def _requests(tmp: Path) -> list[str]:
    return (tmp / "nginx-access.log").read_text().splitlines()


def _published(site: object) -> Path:
    return Path(site.config.published_dir) / "mirror"  # type: ignore[attr-defined]


def test_autoindex_mirror_changes_conditional_and_index_last(tmp_path: Path) -> None:
    root = tmp_path / "www"
    write_tree(root, FILES)
    with nginx(tmp_path, root) as base, local_site(tmp_path) as ls:
        site = ls.site
        add_job(site, {"name": "rpm", "repo": "mirror", "kind": "http", "url": f"{base}/pub/",
                       "max_delete": "50%", "parallel": 3}, actor="admin")
        first = run_once(site, "rpm")
        assert first.state == "success", (first.error, first.log)
        assert first.revision == 1 and first.files == len(FILES)
        assert tree_digests(_published(site)) == tree_digests(root)
        gets = [line.split()[1] for line in _requests(tmp_path) if line.endswith(" 200")]
        files = [g for g in gets if not g.endswith("/")]
        assert files[-1] == "/pub/repodata/repomd.xml"  # the index file came last

        (tmp_path / "nginx-access.log").write_text("")
        again = run_once(site, "rpm")
        assert again.state == "success" and again.revision is None and again.files == 0
        assert all(" 304" in r for r in _requests(tmp_path) if not r.split()[1].endswith("/"))

        (root / "NEW").write_bytes(b"new")
        (root / "Packages/b.rpm").write_bytes(b"B" * 6000)
        (root / "space name.txt").unlink()
        (root / "sub/dir/deep.bin").rename(root / "sub/deep.bin")
        third = run_once(site, "rpm")
        assert third.state == "success", third.log
        assert third.revision == 2 and third.files == 3
        assert tree_digests(_published(site)) == tree_digests(root)

        empty_dir(root)
        emptied = run_once(site, "rpm")
        assert emptied.state == "failed" and "lists no files" in (emptied.error or "")
        assert site.catalog.get_repo("mirror").head == 2
        assert (staging_root(site, "rpm") / "tree" / "NEW").exists()  # staging kept too

    unreachable = run_once(site, "rpm")  # nginx is gone
    assert unreachable.state == "failed" and "cannot reach" in (unreachable.error or "")
    assert site.catalog.get_repo("mirror").head == 2


def test_json_listing_sha256sums_and_resume(tmp_path: Path) -> None:
    root = tmp_path / "www"
    big = os.urandom(1_000_000)
    files = {"a.iso": big, "b.txt": b"bee", "SHA256SUMS": b""}
    write_tree(root, files)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                   for n, d in files.items() if n != "SHA256SUMS")
    (root / "SHA256SUMS").write_text(sums)
    with nginx(tmp_path, root) as base, local_site(tmp_path) as ls:
        site = ls.site
        add_job(site, {"name": "iso", "repo": "mirror", "kind": "http",
                       "url": f"{base}/json/"}, actor="admin")
        etag = httpx.head(f"{base}/json/a.iso").headers["etag"]
        with JobState(staging_root(site, "iso")) as state:  # a run broken off mid-file
            (state.parts / "a.iso.part").write_bytes(big[:400_000])
            state.remember_validators("\0part\0a.iso", Validators(etag, None))
            state.commit()
        first = run_once(site, "iso")
        assert first.state == "success", (first.error, first.log)
        assert first.bytes == len(big) - 400_000 + len(b"bee") + len(sums)
        assert "GET /json/a.iso 206" in _requests(tmp_path)
        assert tree_digests(_published(site)) == tree_digests(root)

        (root / "b.txt").write_bytes(b"tampered")  # SHA256SUMS still names the old bytes
        bad = run_once(site, "iso")
        assert bad.state == "failed" and "SHA256SUMS says" in (bad.error or "")
        assert site.catalog.get_repo("mirror").head == 1

        (root / "b.txt").write_bytes(b"bee")
        os.utime(root / "b.txt", (1, 1))
        add_job(site, {"name": "list", "repo": "mirror", "kind": "http",
                       "http_mode": "sha256sums", "url": f"{base}/pub/SHA256SUMS"},
                actor="admin")
        listed = run_once(site, "list")
        assert listed.state == "success", (listed.error, listed.log)
        staged = staging_root(site, "list") / "tree"
        assert tree_digests(staged) == tree_digests(root)

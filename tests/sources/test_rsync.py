"""An rsync upstream (a real rsync daemon on loopback) mirrored by a site: first run
byte-identical, each upstream change one revision, safety on emptied or unreachable
upstreams, rsync exit codes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tain.sources.jobs import add_job
from tests.sources.upstreams import (
    empty_dir,
    local_site,
    rsync_daemon,
    run_once,
    tree_digests,
    world_readable_dir,
    write_tree,
)

FILES = {
    "dists/stable/Release": b"Origin: test\n",
    "dists/stable/main/binary-amd64/Packages": b"Package: a\nFilename: pool/a.deb\n",
    "pool/a.deb": os.urandom(300_000),
    "pool/b.deb": b"b" * 1000,
    "README": b"hello\n",
}


def _published(ls: object) -> Path:
    site = ls.site  # type: ignore[attr-defined]
    return Path(site.config.published_dir) / "mirror"


def test_rsync_mirror_first_run_changes_and_no_change(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    write_tree(upstream, FILES)
    (upstream / "pool" / "current").symlink_to("a.deb")
    with rsync_daemon(tmp_path, upstream) as url, local_site(tmp_path) as ls:
        site = ls.site
        add_job(site, {"name": "deb", "repo": "mirror", "kind": "rsync", "url": url,
                       "every": "1h", "max_delete": "50%"}, actor="admin")
        first = run_once(site, "deb")
        assert first.state == "success", (first.error, first.log)
        assert first.revision == 1 and first.files == len(FILES)
        assert first.bytes == sum(len(v) for v in FILES.values())
        assert tree_digests(_published(ls)) == tree_digests(upstream)
        revision = site.catalog.get_revision("mirror", 1)
        assert revision.author == "source:deb" and "run" in revision.message

        again = run_once(site, "deb")  # nothing changed upstream
        assert again.state == "success" and again.revision is None and again.files == 0
        assert site.catalog.get_repo("mirror").head == 1

        (upstream / "NEW").write_bytes(b"added")  # add, modify, delete, rename at once
        (upstream / "pool/b.deb").write_bytes(b"B" * 2000)
        (upstream / "README").unlink()
        (upstream / "pool/a.deb").rename(upstream / "pool/a-1.deb")
        (upstream / "pool/current").unlink()
        (upstream / "pool/current").symlink_to("a-1.deb")
        third = run_once(site, "deb")
        assert third.state == "success", third.log
        assert third.revision == 2 and site.catalog.get_repo("mirror").head == 2
        assert tree_digests(_published(ls)) == tree_digests(upstream)
        changed = {d.path for d in site.catalog.diff("mirror", 1, 2)}
        assert {"NEW", "pool/b.deb", "README", "pool/a.deb", "pool/a-1.deb",
                "pool/current"} <= changed
        record = site.catalog.get_source("deb")
        assert record.state == "success" and record.last_revision == 2
        assert record.next_run is not None and record.next_run > site.clock() + 3000


def test_emptied_or_unreachable_upstream_fails_and_changes_nothing(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    write_tree(upstream, FILES)
    with rsync_daemon(tmp_path, upstream) as url, local_site(tmp_path) as ls:
        site = ls.site
        add_job(site, {"name": "deb", "repo": "mirror", "kind": "rsync", "url": url},
                actor="admin")
        add_job(site, {"name": "open", "repo": "mirror", "kind": "rsync", "url": url,
                       "max_delete": "none"}, actor="admin")
        assert run_once(site, "deb").revision == 1
        before = tree_digests(_published(ls))

        empty_dir(upstream)
        for name in ("deb", "open"):  # rsync's --max-delete, then the ingest's own check
            emptied = run_once(site, name)
            assert emptied.state == "failed" and emptied.revision is None
            assert emptied.error and ("max-delete" in emptied.error
                                      or "lists no files" in emptied.error), emptied.error
        assert site.catalog.get_repo("mirror").head == 1
        assert tree_digests(_published(ls)) == before

        write_tree(upstream, FILES)
        (upstream / "pool/a.deb").unlink()  # 1 of 5 files: more than 10%
        too_many = run_once(site, "deb")
        assert too_many.state == "failed" and "max-delete" in (too_many.error or "")
        assert site.catalog.get_repo("mirror").head == 1

    dead = f"rsync://127.0.0.1:{_closed_port()}/pub/"
    with local_site(tmp_path / "other") as ls2:
        add_job(ls2.site, {"name": "gone", "repo": "mirror", "kind": "rsync", "url": dead,
                           "timeout": 5}, actor="admin")
        outcome = run_once(ls2.site, "gone")
        assert outcome.state == "failed" and "rsync exited with code" in (outcome.error or "")
        assert ls2.site.catalog.get_repo("mirror").head == 0
        record = ls2.site.catalog.get_source("gone")
        assert record.state == "failed" and record.last_error == outcome.error
        runs = ls2.site.catalog.list_source_runs("gone")
        assert runs[0].state == "failed" and "rsync" in runs[0].log


def test_accepted_exit_codes_and_run_log_retention(tmp_path: Path) -> None:
    upstream = world_readable_dir(tmp_path)
    write_tree(upstream, {"a": b"1", "b": b"2"})
    (upstream / "secret").write_bytes(b"x")
    (upstream / "secret").chmod(0)  # unreadable upstream file: rsync exits 23
    with rsync_daemon(tmp_path, upstream) as url, local_site(tmp_path) as ls:
        site = ls.site
        add_job(site, {"name": "strict", "repo": "mirror", "kind": "rsync", "url": url,
                       "keep_runs": 2}, actor="admin")
        add_job(site, {"name": "lenient", "repo": "mirror", "kind": "rsync", "url": url,
                       "ok_exit_codes": [0, 23]}, actor="admin")
        try:
            strict = run_once(site, "strict")
            assert strict.state == "failed" and "code 23" in (strict.error or ""), strict.log
            assert site.catalog.get_repo("mirror").head == 0
            lenient = run_once(site, "lenient")
            assert lenient.state == "success" and lenient.revision == 1
            assert {e.path for e in site.catalog.iter_tree("mirror")} == {"a", "b"}
            for _ in range(3):
                run_once(site, "strict")
            runs = site.catalog.list_source_runs("strict", limit=100)
            assert len(runs) == 2 and runs[0].id > runs[1].id
        finally:
            shutil.rmtree(upstream)


def _closed_port() -> int:
    from tests.conftest import free_port
    return free_port()

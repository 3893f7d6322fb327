"""Scrub over a real site (SQLite catalog, three data dirs, two copies): it finds missing,
corrupt and lost copies, repairs them, rotates over slices, and obeys its rate limit."""

from __future__ import annotations

import hashlib
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from tain.config import load
from tain.core.chunking import chunk_bytes
from tain.core.manifest import Change, Entry, Kind
from tain.errors import Conflict, NotFound, RemoteError
from tain.service.scrub import (
    SPACE,
    RateLimiter,
    ScrubOptions,
    plan_slice,
    read_state,
    scrub,
)
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.ops import blob_copies, configure_disks, good_copies, rot


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site_dir = tmp_path / "site"
    create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    configure_disks(site_dir, disks=3, copies=2)
    opened = open_site(load(site_dir, {}))
    opened.catalog.create_repo("r", public=True, actor="t")
    yield opened
    opened.close()


def disks(site: Site) -> list[Path]:
    return list(site.config.store.data_dirs)


def put(site: Site, files: dict[str, bytes]) -> None:
    changes = []
    for path, data in files.items():
        with site.store.new_blob() as w:
            w.write(data)
            sha = w.commit()
        site.catalog.add_blob(sha, len(data), chunk_bytes(data))
        changes.append(Change("put", path, Entry(path, Kind.FILE, 0o644, 10**18, sha, len(data))))
    site.catalog.commit("r", changes, author="t", sign=site.sign)


def some_files(count: int, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"f{i}.bin": rng.randbytes(rng.randint(1, 40_000)) for i in range(count)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_healthy_site_scrubs_clean_and_is_audited(site: Site) -> None:
    files = some_files(20)
    put(site, files)
    report = scrub(site, ScrubOptions())
    assert report.complete and report.ok
    assert report.blobs_checked == report.blobs_ok == 20
    assert report.bytes_read == 2 * sum(len(d) for d in files.values())  # every copy
    [entry] = site.catalog.audit_entries(action="scrub")
    assert entry.details["blobs_checked"] == 20
    assert entry.details["ok"] is True


def test_lost_dir_and_corrupt_copy_are_repaired_to_k_copies(site: Site) -> None:
    files = some_files(30)
    put(site, files)
    d0, d1, d2 = disks(site)
    shutil.rmtree(d0)
    # a blob with both copies on the surviving disks: one of them rots
    victim = next(s for s in map(sha, files.values()) if len(blob_copies([d1, d2], s)) == 2)
    rot(blob_copies([d1, d2], victim)[0], 7)
    report = scrub(site, ScrubOptions())
    assert report.ok and report.complete
    assert report.repaired == len(report.problems) > 0
    for data in files.values():
        assert len(good_copies([d0, d1, d2], sha(data))) == 2
        with site.store.open(sha(data)) as f:
            assert f.read() == data
    again = scrub(site, ScrubOptions())
    assert again.ok and not again.problems


def test_a_recreated_empty_dir_is_filled_again_and_fallback_copies_dropped(site: Site) -> None:
    files = some_files(24, seed=2)
    d0, d1, d2 = disks(site)
    shutil.rmtree(d0)
    put(site, files)  # written while d0 is gone: two copies on d1 and d2
    for data in files.values():
        assert len(good_copies([d1, d2], sha(data))) == 2
    d0.mkdir()
    report = scrub(site, ScrubOptions())
    assert report.ok
    placed = 0
    for data in files.values():
        copies = good_copies([d0, d1, d2], sha(data))
        assert len(copies) == 2
        placed += any(p.is_relative_to(d0) for p in copies)
    assert placed == report.repaired > 0


def test_a_corrupt_copy_is_never_served_even_with_unchanged_metadata(site: Site) -> None:
    data = b"x" * 100_000
    put(site, {"x": data})
    for path in blob_copies(disks(site), sha(data)):
        rot(path, 50_000)
    # A store opened anew (a restart) hashes each blob on its first read; the one that
    # stored it trusts its unchanged file (rot changes no metadata): the scrub checks.
    restarted = open_site(load(site.config.site_dir, {}))
    try:
        with pytest.raises(Exception, match="no good copy"):
            restarted.store.open(sha(data))
    finally:
        restarted.close()
    report = scrub(site, ScrubOptions())
    assert report.unrepaired == 1 and not report.ok
    assert report.problems[0].lost
    assert "--repair-from" in (report.problems[0].error or "")


class DictSource:
    """Another site, as far as the scrub can tell: bytes by (repo, path, revision)."""

    name = "other-site"

    def __init__(self, files: dict[tuple[str, str, int], bytes]) -> None:
        self.files = files
        self.asked: list[tuple[str, str, int]] = []

    def fetch(self, repo: str, path: str, rev: int, out: BinaryIO) -> None:
        self.asked.append((repo, path, rev))
        if (repo, path, rev) not in self.files:
            raise NotFound(f"{path} not at {rev}")
        out.write(self.files[(repo, path, rev)])


def test_a_lost_blob_comes_back_from_another_site_only_if_its_digest_matches(
    site: Site,
) -> None:
    data = some_files(1, seed=3)["f0.bin"]
    put(site, {"a/lost.bin": data})
    put(site, {"other": b"second revision"})
    for path in blob_copies(disks(site), sha(data)):
        path.unlink()
    liar = DictSource({("r", "a/lost.bin", 2): data[::-1]})
    report = scrub(site, ScrubOptions(remote=liar))
    assert liar.asked == [("r", "a/lost.bin", 2)]  # the newest revision that uses it
    assert report.unrepaired == 1
    assert blob_copies(disks(site), sha(data)) == []
    honest = DictSource({("r", "a/lost.bin", 2): data})
    report = scrub(site, ScrubOptions(remote=honest))
    assert report.ok and report.repaired == 1
    assert report.problems[0].source is not None
    assert "other-site" in report.problems[0].source
    assert len(good_copies(disks(site), sha(data))) == 2


def test_fraction_rotates_over_every_blob(site: Site) -> None:
    files = some_files(60, seed=4)
    put(site, files)
    for data in files.values():  # one bad copy per blob: each run repairs its slice
        rot(blob_copies(disks(site), sha(data))[0])
    repaired: list[str] = []
    for _ in range(4):
        report = scrub(site, ScrubOptions(fraction=0.25))
        assert report.complete
        repaired += [p.sha256 for p in report.problems if p.repaired]
    assert sorted(repaired) == sorted(sha(d) for d in files.values())
    assert read_state(site)["cursor"] == 0  # four quarters: back at the start
    assert not scrub(site, ScrubOptions(fraction=0.25)).problems


def test_slices_cover_the_name_space_exactly() -> None:
    for fraction, runs in ((0.1, 10), (1 / 3, 3), (0.25, 4), (1.0, 1), (0.7, 2)):
        cursor, covered = 0, 0
        for _ in range(runs):
            bounds, cursor = plan_slice(cursor, fraction)
            for after, below in bounds:
                covered += (int(below, 16) if below else SPACE) - int(after, 16)
        assert covered >= SPACE, fraction
    bounds, cursor = plan_slice(SPACE // 2, 1.0)  # a full run from mid-way wraps round
    assert bounds == [(f"{SPACE // 2:016x}", None), ("0000000000000000", f"{SPACE // 2:016x}")]
    assert cursor == SPACE // 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_rate_limiter_is_a_token_bucket() -> None:
    clock = FakeClock()
    bucket = RateLimiter(1000, clock=clock, sleep=clock.sleep)
    bucket.take(1000)  # the burst
    assert clock.slept == 0
    bucket.take(500)
    assert clock.slept == pytest.approx(0.5)
    clock.now += 10  # idle time refills only up to the burst
    bucket.take(1000)
    bucket.take(2000)
    assert clock.slept == pytest.approx(2.5)


def test_scrub_reads_at_the_rate_limit(site: Site) -> None:
    files = some_files(10, seed=5)
    put(site, files)
    clock = FakeClock()
    rate = 100_000
    report = scrub(site, ScrubOptions(rate_limit=rate, workers=1), clock=clock,
                   sleep=clock.sleep)
    assert report.bytes_read > rate
    assert clock.slept == pytest.approx((report.bytes_read - rate) / rate, rel=0.01)
    assert site.catalog.audit_entries(action="scrub")[-1].details["rate_limit"] == rate


def test_a_cancelled_run_saves_how_far_it_got(site: Site) -> None:
    put(site, some_files(40, seed=6))
    stop = threading.Event()

    class StopAfterTen:
        seen = 0

        def start(self, phase: str, total: int | None = None) -> None:
            assert total == 40

        def advance(self, amount: int = 1) -> None:
            self.seen += amount
            if self.seen == 10:
                stop.set()

        def finish(self) -> None:
            pass

    report = scrub(site, ScrubOptions(workers=1), progress=StopAfterTen(), cancel=stop)
    assert not report.complete and report.blobs_checked == 10
    cursor = read_state(site)["cursor"]
    assert 0 < cursor < SPACE
    rest = scrub(site, ScrubOptions())  # a full run from there wraps round
    assert rest.complete and rest.blobs_checked == 40
    assert rest.slice_start == f"{cursor:016x}"


def test_one_scrub_at_a_time(site: Site) -> None:
    put(site, some_files(3, seed=7))
    started, release = threading.Event(), threading.Event()

    class Hold:
        def start(self, phase: str, total: int | None = None) -> None:
            started.set()
            release.wait(10)

        def advance(self, amount: int = 1) -> None:
            pass

        def finish(self) -> None:
            pass

    t = threading.Thread(target=scrub, args=(site, ScrubOptions()), kwargs={"progress": Hold()})
    t.start()
    started.wait(10)
    try:
        with pytest.raises(Conflict):
            scrub(site, ScrubOptions())
    finally:
        release.set()
        t.join(10)


def test_published_hard_links_to_a_rotten_copy_are_repointed(site: Site) -> None:
    data = some_files(1, seed=8)["f0.bin"]
    put(site, {"pub/file.bin": data})
    site.publish("r")
    published = site.config.published_dir / "r" / "pub" / "file.bin"
    assert published.read_bytes() == data
    # the published file shares its inode with one blob copy: rot that copy
    shared = next(p for p in blob_copies(disks(site), sha(data))
                  if p.stat().st_ino == published.stat().st_ino)
    rot(shared, 3)
    assert published.read_bytes() != data
    report = scrub(site, ScrubOptions())
    assert report.ok and report.repaired == 1 and report.relinked >= 1
    assert published.read_bytes() == data
    assert not list(site.store.quarantined())  # type: ignore[attr-defined]


def test_remote_errors_are_reported_not_raised(site: Site) -> None:
    data = b"unlucky" * 1000
    put(site, {"u": data})
    for path in blob_copies(disks(site), sha(data)):
        path.unlink()

    class Down:
        name = "down-site"

        def fetch(self, repo: str, path: str, rev: int, out: BinaryIO) -> None:
            raise RemoteError("cannot reach down-site")

    report = scrub(site, ScrubOptions(remote=Down()))
    assert report.unrepaired == 1
    assert "cannot reach down-site" in (report.problems[0].error or "")

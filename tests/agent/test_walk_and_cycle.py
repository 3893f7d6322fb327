"""The stat walk (what differs, without reading unchanged files), catching up with a
site, and one sync cycle against a real site in this process."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

import tain.agent.sync as sync_module
from tain.agent.debounce import Policy
from tain.agent.ignore import IgnoreRules
from tain.agent.journal import CachedFile, Journal, Mark
from tain.agent.local import Source, same_state, trusted, with_digest
from tain.agent.reconcile import catch_up, walk
from tain.agent.sync import Cycle, CycleOptions
from tain.client import SiteClient
from tain.core.chunking import ChunkRef, chunk_bytes
from tain.core.manifest import Change, Entry, Kind
from tain.errors import Conflict
from tain.push.cache import FileStamp
from tain.push.scan import FileChanged
from tain.push.snapshot import RACY_NS
from tests.agent.conftest import REPO, Site, local_state, remote_state

P = Policy(settle=0.0, quiet=0.0, max_delay=5.0, batch_wait=0.0)
OLD = 10**9  # read long after any change


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("f")
    (root / "top.txt").write_text("top")
    (root / "link").symlink_to("top.txt")
    (root / "out").symlink_to("../elsewhere")
    (root / "build").mkdir()
    (root / "build" / "x.o").write_text("o")
    (root / ".tainignore").write_text("build/\n")
    (root / ".state").mkdir()
    (root / ".state" / "journal.sqlite3").write_text("")
    os.mkfifo(root / "pipe")
    return root


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "state")
    yield j
    j.close()


def source(root: Path) -> Source:
    return Source(root, IgnoreRules.load(root), (".state",))


def settle_everything(src: Source, journal: Journal) -> None:
    """Make the journal say the site holds the directory as it is, digests cached."""
    puts, cached = [], []
    for item in journal.ready(time.monotonic(), P, 1000):
        observed = src.observe(item.path)
        entry = observed.entry
        if entry is not None and observed.stamp is not None:
            data = Path(src.location(item.path)).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            entry = with_digest(entry, digest)
            hashed = observed.stamp.ctime_ns + OLD
            chunks = tuple(chunk_bytes(data))
            cached.append((item.path, CachedFile(observed.stamp, hashed, digest, chunks)))
        if entry is not None:
            puts.append(entry)
    journal.store_cached(cached)
    journal.apply_commit(puts, [], [(i.path, i.seq) for i in journal.ready(
        time.monotonic(), P, 1000)], {})


def queued(journal: Journal) -> list[str]:
    return sorted(i.path for i in journal.ready(time.monotonic(), P, 10_000))


def test_a_first_walk_queues_every_storable_path(tree: Path, journal: Journal) -> None:
    result = walk(source(tree), journal)
    assert queued(journal) == [".tainignore", "a", "a/b", "a/b/f.txt", "link", "top.txt"]
    assert result.dirs == 3  # the top, a, a/b: ignored and state directories are not entered
    assert any("out" in w and "outside" in w for w in result.warnings)
    assert any("pipe" in w for w in result.warnings)


def test_unchanged_files_are_not_queued_changed_ones_are(tree: Path, journal: Journal) -> None:
    src = source(tree)
    walk(src, journal)
    settle_everything(src, journal)
    assert walk(src, journal).queued == 0
    (tree / "top.txt").write_text("changed")
    (tree / "a" / "b" / "f.txt").chmod(0o600)
    (tree / "link").unlink()
    (tree / "a" / "new.txt").write_text("new")
    (tree / "build" / "ignored.o").write_text("still ignored")
    result = walk(src, journal)
    assert result.queued == 4
    assert queued(journal) == ["a/b/f.txt", "a/new.txt", "link", "top.txt"]


def test_a_walk_below_one_directory(tree: Path, journal: Journal) -> None:
    src = source(tree)
    walk(src, journal, "a")
    assert queued(journal) == ["a", "a/b", "a/b/f.txt"]


def test_a_walk_names_the_noted_directories_it_read(tree: Path, journal: Journal) -> None:
    result = walk(source(tree), journal, "a", note={"a", "a/b", "build", "top.txt", "zz"})
    assert result.noted == {"a", "a/b"}  # not the ignored directory, files or strangers


def test_a_walk_passes_over_paths_already_queued(
    tree: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(tree)
    walk(src, journal)
    settle_everything(src, journal)
    (tree / "top.txt").write_text("changed")
    (tree / "a" / "b" / "new.txt").write_text("new")
    journal.mark_found(["a", "a/b/new.txt", "a/bc", "a/b/new.txt/x", "ab"])  # as events do
    assert journal.queued_children("a") == {"a/bc"}
    assert journal.queued_children("a/b") == {"a/b/new.txt"}
    assert journal.queued_children("") == {"a", "ab"}
    looked_at: list[str] = []
    observe_stat = src.observe_stat

    def counted(path: str, st: os.stat_result) -> object:
        looked_at.append(path)
        return observe_stat(path, st)

    monkeypatch.setattr(src, "observe_stat", counted)
    walk(src, journal)
    assert "a/b/new.txt" not in looked_at and "a" not in looked_at
    assert {"top.txt", "a/b", "a/b/f.txt"} <= set(looked_at)  # a queued directory is entered
    assert {"a", "a/b/new.txt", "top.txt"} <= set(queued(journal))


def test_racy_cached_digests_are_not_trusted(tree: Path) -> None:
    st = (tree / "top.txt").lstat()
    stamp = FileStamp.of(st)
    whole = (ChunkRef("aa" * 32, 0, stamp.size),)
    fine = stamp.ctime_ns % 1_000_000_000 != 0
    assert trusted(CachedFile(stamp, stamp.ctime_ns + 2 * 10**9, "x", whole), stamp)
    assert not trusted(CachedFile(stamp, stamp.ctime_ns + 10**6, "x", whole), stamp)
    assert trusted(CachedFile(stamp, stamp.ctime_ns + 200 * 10**6, "x", whole), stamp) == fine
    moved = FileStamp(stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.inode + 1)
    assert not trusted(CachedFile(moved, stamp.ctime_ns + 10**10, "x", whole), stamp)
    assert not trusted(CachedFile(stamp, stamp.ctime_ns + 10**10, "x", ()), stamp)


def test_same_state() -> None:
    f = Entry("f", Kind.FILE, 0o644, 5, "aa" * 32, 3)
    assert same_state(f, f) and same_state(None, None)
    assert not same_state(f, None) and not same_state(None, f)
    assert not same_state(f, Entry("f", Kind.FILE, 0o755, 5, "aa" * 32, 3))
    d = Entry("d", Kind.DIR, 0o755, 1)
    assert same_state(d, Entry("d", Kind.DIR, 0o755, 99))  # a directory's mtime is no content


# --- against a real site --------------------------------------------------------------------


def cycle(src: Source, journal: Journal, client: SiteClient, site: Site,
          flush: object = None) -> Cycle:
    options = CycleOptions(repo=REPO, site=site.url, message="test", workers=2)
    return Cycle(src, journal, client, options, stop=threading.Event(),
                 flush_events=flush if callable(flush) else (lambda: None))


def run_once(src: Source, journal: Journal, client: SiteClient, site: Site) -> None:
    catch_up(client, REPO, journal, site.url)
    cycle(src, journal, client, site).run(journal.ready(time.monotonic(), P, 10_000))


def test_a_cycle_sends_the_directory(tree: Path, journal: Journal, site: Site) -> None:
    src = source(tree)
    walk(src, journal)
    with SiteClient(site.url, site.token) as client:
        run_once(src, journal, client, site)
    ignored = {"build", "build/x.o", ".state", ".state/journal.sqlite3", "out", "pipe"}
    assert remote_state(site.url, site.token) == local_state(tree, lambda p: p in ignored)
    assert journal.queue_length() == 0
    assert journal.remote_record() == (site.url, 1)


def test_a_file_changed_while_taken_is_not_committed(
    tree: Path, journal: Journal, site: Site
) -> None:
    src = source(tree)
    walk(src, journal, "a")

    def a_write_arrives() -> None:  # an event recorded while the cycle read the file
        journal.record_marks([Mark("a/b/f.txt", time.monotonic(), writing=True)])

    with SiteClient(site.url, site.token) as client:
        catch_up(client, REPO, journal, site.url)
        report = cycle(src, journal, client, site, a_write_arrives).run(
            journal.ready(time.monotonic(), P, 100))
    assert report.deferred == 1 and report.puts == 2  # a and a/b
    assert set(remote_state(site.url, site.token)) == {"a", "a/b"}
    assert journal.queue_length() == 1
    assert journal.current(["a/b/f.txt"])["a/b/f.txt"].writing  # waits until it is stable


def test_a_file_changed_between_reading_and_committing_is_not_committed(
    tree: Path, journal: Journal, site: Site
) -> None:
    src = source(tree)
    walk(src, journal, "a")
    with SiteClient(site.url, site.token) as client:
        catch_up(client, REPO, journal, site.url)
        pending = cycle(src, journal, client, site)
        pending.prepare(journal.ready(time.monotonic(), P, 100))  # read while another commits
        (tree / "a" / "b" / "f.txt").write_text("written again")
        journal.record_marks([Mark("a/b/f.txt", time.monotonic(), writing=True)])
        report = pending.commit()
    assert report.deferred == 1 and set(remote_state(site.url, site.token)) == {"a", "a/b"}
    assert journal.current(["a/b/f.txt"])["a/b/f.txt"].writing


def test_files_that_change_or_vanish_while_read(
    tree: Path, journal: Journal, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(tree)
    walk(src, journal)
    real = sync_module.read_snapshot

    def flaky(path: str, location: str, **options: bool) -> object:
        if path == "top.txt":
            raise FileChanged(path)
        if path == "a/b/f.txt":
            os.unlink(location)
            raise FileNotFoundError(location)
        return real(path, location, **options)

    monkeypatch.setattr(sync_module, "read_snapshot", flaky)
    with SiteClient(site.url, site.token) as client:
        run_once(src, journal, client, site)
    got = remote_state(site.url, site.token)
    assert "top.txt" not in got and "a/b/f.txt" not in got and "a/b" in got
    assert journal.current(["top.txt"])["top.txt"].writing  # retried once it is stable
    monkeypatch.setattr(sync_module, "read_snapshot", real)
    with SiteClient(site.url, site.token) as client:
        cycle(src, journal, client, site).run(journal.ready(time.monotonic() + 1, P, 100))
    assert remote_state(site.url, site.token)["top.txt"][2] == sha(tree / "top.txt")


def test_parents_the_site_lacks_are_sent_with_a_file(
    tree: Path, journal: Journal, site: Site
) -> None:
    src = source(tree)
    journal.mark_found(["a/b/f.txt"])
    (tree / "a").chmod(0o700)
    with SiteClient(site.url, site.token) as client:
        run_once(src, journal, client, site)
    got = remote_state(site.url, site.token)
    assert got["a"] == ("dir", 0o700, "") and got["a/b"][0] == "dir"
    assert set(journal.remote_entries(["a", "a/b", "a/b/f.txt"])) == {"a", "a/b", "a/b/f.txt"}


def test_catching_up_after_another_writer(tree: Path, journal: Journal, site: Site) -> None:
    src = source(tree)
    walk(src, journal)
    with SiteClient(site.url, site.token) as client:
        run_once(src, journal, client, site)
        assert catch_up(client, REPO, journal, site.url).how == "same"
        client.commit(REPO, [Change("delete", "top.txt")], message="someone", commit_id="x1")
        (tree / "a" / "new.txt").write_text("n")
        journal.mark_found(["a/new.txt"])
        time.sleep(RACY_NS / 1e9)  # a file written this instant is not read yet (racy)
        with pytest.raises(Conflict):
            cycle(src, journal, client, site).run(journal.ready(time.monotonic(), P, 100))
        result = catch_up(client, REPO, journal, site.url)
        assert (result.how, result.corrected) == ("diff", 1)
        cycle(src, journal, client, site).run(journal.ready(time.monotonic(), P, 100))
        journal.set_remote_record("http://another-site", 1)
        assert catch_up(client, REPO, journal, site.url).how == "full"
    ignored = {"build", "build/x.o", ".state", ".state/journal.sqlite3", "out", "pipe"}
    assert remote_state(site.url, site.token) == local_state(tree, lambda p: p in ignored)


def test_an_unreadable_file_is_reported_and_left_alone(
    tree: Path, journal: Journal, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(tree)
    walk(src, journal)

    def refuse(path: str, location: Path, **options: bool) -> object:
        raise PermissionError(13, "Permission denied", str(location))

    monkeypatch.setattr(sync_module, "read_snapshot", refuse)
    with SiteClient(site.url, site.token) as client:
        catch_up(client, REPO, journal, site.url)
        report = cycle(src, journal, client, site).run(journal.ready(time.monotonic(), P, 100))
    assert any("top.txt: cannot read (Permission denied)" in w for w in report.warnings)
    assert journal.queue_length() == 0  # no busy retry loop; a change or rescan tries again
    assert "top.txt" not in remote_state(site.url, site.token)


def test_a_commit_does_not_ask_again_about_blobs_sent_while_reading(
    tree: Path, journal: Journal, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(tree)
    walk(src, journal)
    asked: list[list[str]] = []
    real_missing = SiteClient.missing

    def missing(self: SiteClient, repo: str, **kinds: list[str]) -> object:
        asked.append(list(kinds.get("blobs") or ()))
        return real_missing(self, repo, **kinds)

    monkeypatch.setattr(SiteClient, "missing", missing)
    with SiteClient(site.url, site.token) as client:
        run_once(src, journal, client, site)
    files = ("a/b/f.txt", "top.txt", ".tainignore")
    assert asked == [sorted({sha(tree / f) for f in files})]  # the stream's question only
    assert remote_state(site.url, site.token)["top.txt"][2] == sha(tree / "top.txt")


def test_a_blob_seen_on_the_site_but_gone_by_the_commit_is_sent_then(
    tree: Path, journal: Journal, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(tree)
    walk(src, journal)
    monkeypatch.setattr(sync_module, "SmallFileStream", _Unsent)
    with SiteClient(site.url, site.token) as client:
        run_once(src, journal, client, site)
    got = remote_state(site.url, site.token)
    assert got["top.txt"][2] == sha(tree / "top.txt")
    assert got["a/b/f.txt"][2] == sha(tree / "a/b/f.txt")


class _Unsent(sync_module.SmallFileStream):
    """A stream that sends nothing yet says the site holds every blob it was given:
    as if the site lost them between the stream and the commit."""

    def add(self, snap: object) -> bool:
        self.on_site.add(snap.sha256)  # type: ignore[attr-defined]
        return False

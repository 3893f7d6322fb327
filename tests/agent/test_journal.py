"""The journal: the durable queue, what the site holds, the read cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tain.agent.debounce import Policy
from tain.agent.journal import (
    CachedFile,
    Journal,
    JournalError,
    Mark,
    pack_chunks,
    unpack_chunks,
)
from tain.core.chunking import ChunkRef
from tain.core.manifest import Entry, Kind
from tain.push.cache import FileStamp

P = Policy(settle=0.05, quiet=0.25, max_delay=5.0, batch_wait=1.0)
SHA = "ab" * 32


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "state")
    yield j
    j.close()


def file(path: str, sha: str = SHA, size: int = 3) -> Entry:
    return Entry(path, Kind.FILE, 0o644, 1, sha, size)


def directory(path: str) -> Entry:
    return Entry(path, Kind.DIR, 0o755, 1)


def test_marks_keep_the_latest_change_and_a_sticky_tree(journal: Journal) -> None:
    journal.record_marks([Mark("a", 100.0, writing=True), Mark("d", 100.0, tree=True)])
    journal.record_marks([Mark("a", 101.0, writing=False), Mark("d", 101.0)])
    rows = journal.current(["a", "d"])
    assert (rows["a"].writing, rows["a"].first_at, rows["a"].last_at) == (False, 100.0, 101.0)
    assert rows["d"].tree  # a later plain change does not undo "and everything below"
    assert rows["a"].seq > 0 and journal.queue_length() == 2


def test_ready_follows_the_policy(journal: Journal) -> None:
    journal.record_marks([Mark("closed", 100.0), Mark("written", 100.0, writing=True),
                          Mark("t", 100.0, tree=True)])
    assert journal.ready(100.04, P, 10) == [] and journal.ready_trees(100.04, P, 10) == []
    assert [i.path for i in journal.ready(100.06, P, 10)] == ["closed"]
    assert [i.path for i in journal.ready_trees(100.06, P, 10)] == ["t"]
    assert [i.path for i in journal.ready(100.3, P, 10)] == ["closed", "written"]
    assert [i.path for i in journal.ready(100.3, P, 1)] == ["closed"]
    assert journal.next_ready_at(P) == pytest.approx(100.05)
    journal.clear([(i.path, i.seq) for i in journal.ready(100.3, P, 10)])
    assert [i.path for i in journal.ready_trees(100.3, P, 10)] == ["t"]  # a cycle never
    # takes a tree mark: it would clear it before the walk that expands it
    journal.untree([("t", journal.current(["t"])["t"].seq)])
    assert [i.path for i in journal.ready(100.3, P, 10)] == ["t"]
    journal.clear([(i.path, i.seq) for i in journal.ready(100.3, P, 10)])
    assert journal.next_ready_at(P) is None


def test_untree_keeps_a_tree_marked_again_since(journal: Journal) -> None:
    journal.record_marks([Mark("t", 1.0, tree=True)])
    seq = journal.current(["t"])["t"].seq
    journal.record_marks([Mark("t", 2.0, tree=True)])  # moved in again meanwhile
    journal.untree([("t", seq)])
    assert [i.path for i in journal.ready_trees(10.0, P, 10)] == ["t"]


def test_ready_passes_over_paths_in_flight(journal: Journal) -> None:
    journal.record_marks([Mark(f"f{i}", float(i)) for i in range(6)])
    assert [i.path for i in journal.ready(100.0, P, 2, exclude={"f0", "f1"})] == ["f2", "f3"]
    assert [i.path for i in journal.ready(100.0, P, 9, exclude={"f2"})] == [
        "f0", "f1", "f3", "f4", "f5"]


def test_found_paths_are_ready_at_once_but_do_not_override_a_writer(journal: Journal) -> None:
    journal.record_marks([Mark("busy", 100.0, writing=True)])
    assert journal.mark_found(["busy", "found"]) == 1
    assert [i.path for i in journal.ready(100.0, P, 10)] == ["found"]


def test_a_path_changed_after_it_was_taken_stays_queued(journal: Journal) -> None:
    journal.record_marks([Mark("a", 1.0), Mark("b", 1.0)])
    taken = {i.path: i.seq for i in journal.ready(10.0, P, 10)}
    journal.record_marks([Mark("b", 10.0, writing=True)])  # changed while being sent
    journal.clear(list(taken.items()))
    assert list(journal.current(["a", "b"])) == ["b"]


def test_defer_waits_for_quiet_and_restarts_max_delay(journal: Journal) -> None:
    journal.record_marks([Mark("f", 1.0)])
    journal.defer(["f"], 50.0)
    row = journal.current(["f"])["f"]
    assert row.writing and row.first_at == 50.0 and row.last_at == 50.0
    assert journal.ready(50.2, P, 10) == []
    assert [i.path for i in journal.ready(50.3, P, 10)] == ["f"]


def test_times_of_another_process_are_reset(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    first.record_marks([Mark("x", 1e9, writing=True)])
    first.close()
    again = Journal(tmp_path)
    again.reset_times()
    assert [i.path for i in again.ready(0.0, P, 10)] == ["x"]
    assert again.seq.take() > again.current(["x"])["x"].seq
    again.close()


def test_apply_commit_updates_the_remote_view_and_the_queue(journal: Journal) -> None:
    journal.correct_remote([("d", directory("d")), ("d/x", file("d/x")),
                            ("d/sub", directory("d/sub")), ("d/sub/y", file("d/sub/y")),
                            ("d-other", file("d-other")), ("f", directory("f")),
                            ("f/z", file("f/z"))], queue=False)
    journal.record_marks([Mark("d", 1.0), Mark("f", 1.0)])
    taken = [(i.path, i.seq) for i in journal.ready(10.0, P, 10)]
    journal.apply_commit([file("f"), file("new", size=5)], ["d"], taken,
                         {"remote_site": "http://s", "remote_rev": 7})
    assert journal.remote_page(None, 100) == [file("d-other"), file("f"), file("new", size=5)]
    assert journal.queue_length() == 0
    assert journal.remote_record() == ("http://s", 7)
    assert journal.children("f") == {} and journal.children("d") == {}


def test_correct_remote_records_the_site_and_queues(journal: Journal) -> None:
    journal.correct_remote([("a", file("a")), ("b/c", file("b/c"))])
    journal.correct_remote([("a", None)])
    assert journal.remote_entries(["a", "b/c"]) == {"b/c": file("b/c")}
    assert sorted(journal.current(["a", "b/c"])) == ["a", "b/c"]
    assert list(journal.children("b")) == ["b/c"]
    assert [e.path for e in journal.remote_page("a", 10)] == ["b/c"]


def test_the_read_cache_round_trips_and_finds_moved_files(journal: Journal) -> None:
    chunks = (ChunkRef("11" * 32, 0, 70000), ChunkRef("22" * 32, 70000, 5))
    assert unpack_chunks(pack_chunks(chunks)) == chunks
    stamp = FileStamp(70005, 5, 6, 77)
    journal.store_cached([("old/name", CachedFile(stamp, 9, SHA, chunks))])
    assert journal.cached("old/name") == CachedFile(stamp, 9, SHA, chunks)
    assert journal.cached_by_inodes([77]) == {77: [CachedFile(stamp, 9, SHA, chunks)]}
    assert journal.cached_by_inodes([78]) == {}
    assert journal.cached_many(["old/name", "nothing"]) == {
        "old/name": CachedFile(stamp, 9, SHA, chunks)}
    journal.apply_commit([file("old/name")], [], [], {})
    assert journal.prune_cache() == 0  # the site holds it
    journal.apply_commit([], ["old"], [], {})
    assert journal.cached("old/name") is not None  # kept for a file moved elsewhere
    assert journal.prune_cache() == 1
    assert journal.cached("old/name") is None


def test_meta_and_a_read_only_view(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.set({"agent_id": "x1", "gone": "soon"})
    j.set({"gone": None})
    j.record_marks([Mark("w", 1.0, writing=True)])
    reader = Journal(tmp_path, readonly=True)
    assert reader.meta() == {"agent_id": "x1"}
    assert (reader.queue_length(), reader.being_written()) == (1, 1)
    with pytest.raises(JournalError):
        reader.set({"agent_id": "y"})
    reader.close()
    j.close()


def test_a_journal_of_another_version_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalError, match="another version"):
        Journal(tmp_path)


def test_an_event_on_a_scanned_path_makes_it_wait_like_any_change(journal: Journal) -> None:
    journal.mark_found(["f"])
    journal.record_marks([Mark("f", 100.0, writing=True)])
    row = journal.current(["f"])["f"]
    assert (row.first_at, row.last_at, row.writing) == (100.0, 100.0, True)
    assert journal.ready(100.1, P, 10) == []

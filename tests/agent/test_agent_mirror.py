"""A real agent process against a real site: a scripted series of changes of every kind
ends with the repository's head identical to the directory, path by path."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from tain.client import SiteClient
from tests.agent.conftest import (
    REPO,
    AgentProcess,
    Site,
    head,
    local_state,
    published_digests,
    remote_state,
    wait_for,
    wait_identical,
)

EDITOR_TEMPORARY = (".notes.txt.swp", "draft.txt~", "4913", ".#lock")


def ignored(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in EDITOR_TEMPORARY or name.endswith(".log") or path.startswith("cache")


def write(path: Path, data: bytes | str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)


def initial_tree(root: Path, rng: random.Random) -> None:
    write(root / "readme.txt", "hello\n")
    write(root / "empty.dat", b"")
    write(root / "big.bin", rng.randbytes(3 * 1024 * 1024 + 17))
    write(root / "bin" / "run.sh", "#!/bin/sh\necho hi\n", 0o755)
    write(root / "docs" / "deep" / "nested" / "a.md", "# a\n")
    write(root / "private" / "key.txt", "secret", 0o600)
    (root / "private").chmod(0o700)
    (root / "emptydir").mkdir()
    (root / "link-to-readme").symlink_to("readme.txt")
    (root / "docs" / "up").symlink_to("../readme.txt")
    (root / "docs-link").symlink_to("docs")
    write(root / ".tainignore", "*.log\ncache/\n")
    write(root / "cache" / "tmp.bin", rng.randbytes(1000))
    write(root / "debug.log", "ignored\n")


def test_scripted_changes_end_identical(
    tmp_path: Path, site: Site, agents: Callable[..., AgentProcess]
) -> None:
    rng = random.Random(42)
    root = tmp_path / "src"
    root.mkdir()
    initial_tree(root, rng)
    (tmp_path / "outside.txt").write_text("outside")
    (root / "escape").symlink_to("../outside.txt")  # points out of the tree: not mirrored
    agent = agents(root, [site])
    agent.start()

    def not_mirrored(path: str) -> bool:
        return ignored(path) or path == "escape"

    wait_identical(root, site.url, site.token, ignored=not_mirrored)

    # edits, appends, truncations, deletes, renames, links, modes, kind changes
    write(root / "readme.txt", "hello again\n")
    with (root / "big.bin").open("r+b") as f:
        f.seek(1024 * 1024)
        f.write(b"patched in the middle")
    with (root / "docs" / "deep" / "nested" / "a.md").open("a") as f:
        f.write("appended line\n")
    os.truncate(root / "bin" / "run.sh", 10)
    (root / "empty.dat").unlink()
    (root / "docs" / "deep" / "nested" / "a.md").rename(root / "docs" / "a-moved.md")
    (root / "link-to-readme").unlink()
    (root / "link-to-readme").symlink_to("docs/a-moved.md")  # retargeted
    (root / "docs" / "up").unlink()
    (root / "new-link").symlink_to("bin/run.sh")
    (root / "dangling").symlink_to("no/such/file")
    (root / "readme.txt").chmod(0o640)
    (root / "bin" / "run.sh").chmod(0o700)
    (root / "emptydir").chmod(0o750)
    shutil.rmtree(root / "private")
    write(root / "private", "now a file\n")  # a directory replaced by a file
    (root / "docs-link").unlink()
    (root / "docs-link").mkdir()  # a symlink replaced by a directory
    write(root / "docs-link" / "inside.txt", "x")
    for name in EDITOR_TEMPORARY:
        write(root / "docs" / name, "editor scratch")
    write(root / "more.log", "ignored too\n")
    wait_identical(root, site.url, site.token, ignored=not_mirrored)

    # a directory of 1,000 files, created and filled at once
    bulk = root / "bulk" / "inner"
    bulk.mkdir(parents=True)
    for i in range(1000):
        (bulk / f"f{i:04}.txt").write_bytes(f"file {i}\n".encode() * (i % 7 + 1))
    wait_identical(root, site.url, site.token, ignored=not_mirrored)

    # the whole directory renamed, then moved below another one; edits inside it
    (root / "bulk").rename(root / "renamed")
    (root / "docs" / "archive").mkdir()
    (root / "renamed").rename(root / "docs" / "archive" / "bulk")
    write(root / "docs" / "archive" / "bulk" / "inner" / "f0001.txt", "changed after the move")
    (root / "docs" / "archive" / "bulk" / "inner" / "f0002.txt").unlink()
    # a directory moved in from outside, one moved out
    write(tmp_path / "incoming" / "sub" / "x.txt", "from outside")
    (tmp_path / "incoming").rename(root / "incoming")
    (root / "docs-link").rename(tmp_path / "gone-out")
    wait_identical(root, site.url, site.token, ignored=not_mirrored)

    # deletes of everything but a few paths
    shutil.rmtree(root / "docs")
    (root / "big.bin").unlink()
    state = wait_identical(root, site.url, site.token, ignored=not_mirrored)

    # the bytes the site publishes (once it has published the head) are the directory's
    files = {p: v[2] for p, v in state.items() if v[0] == "file"}
    wait_for(lambda: published_digests(site.site_dir) == files, "the published tree")

    # the site knows the agent from its heartbeats
    final = head(site.url, site.token)

    def reported() -> list[dict[str, object]]:
        with SiteClient(site.url, site.token) as client:
            return [a for a in client.list_agents()
                    if a["queue_length"] == 0 and a["last_revision"] == final]

    wait_for(lambda: bool(reported()), "a heartbeat with an empty queue and the head")
    [seen] = reported()
    assert seen["directory"] == str(root) and seen["repo"] == REPO and seen["version"]
    assert seen["host"] and seen["current_site"] == site.url and seen["last_error"] is None
    assert agent.stop() == 0  # SIGTERM: a clean stop


def test_restart_over_unchanged_files_reads_nothing(
    tmp_path: Path, site: Site, agents: Callable[..., AgentProcess]
) -> None:
    root = tmp_path / "src"
    rng = random.Random(1)
    for i in range(300):
        write(root / f"d{i % 10}" / f"f{i}.bin", rng.randbytes(rng.randint(0, 20_000)))
    agent = agents(root, [site], module=True)  # python -m tain.agent
    agent.start()
    wait_identical(root, site.url, site.token)
    revision = head(site.url, site.token)
    assert agent.stop() == 0
    # changed while the agent was stopped: found by the stat walk at the next start
    write(root / "d3" / "f3.bin", b"changed while stopped")
    (root / "d4" / "f4.bin").unlink()
    agent.start()
    wait_identical(root, site.url, site.token)
    assert head(site.url, site.token) == revision + 1
    assert agent.stop() == 0
    agent.start()
    wait_for(lambda: "(start): 0 queued" in agent.output().split("mirroring")[-1],
             "the third start's stat walk")
    status = agent.status()
    assert status["running"] and status["queue_length"] == 0
    assert agent.stop() == 0
    assert head(site.url, site.token) == revision + 1  # nothing was sent again
    assert remote_state(site.url, site.token) == local_state(root)


def test_burst_of_creates_becomes_few_revisions(
    tmp_path: Path, site: Site, agents: Callable[..., AgentProcess]
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    agent = agents(root, [site])
    agent.start()
    wait_for(lambda: agent.state() == "idle", "the agent to be idle")
    before = head(site.url, site.token)
    for i in range(10_000):
        (root / f"n{i:05}.txt").write_bytes(b"%d\n" % (i % 100))
    wait_identical(root, site.url, site.token, timeout=60)
    revisions = head(site.url, site.token) - before
    assert 1 <= revisions <= 20, revisions
    assert REPO in agent.output()

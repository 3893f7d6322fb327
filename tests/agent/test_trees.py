"""Directories created or moved in (tree marks) are walked before their content is
trusted to the watch, once each: a directory read by the walk of one above it is not
walked again, and a cycle never takes a tree mark in place of its walk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.agent import source as source_module
from tain.agent.config import Timing, source_config
from tain.agent.debounce import Policy
from tain.agent.display import LogDisplay
from tain.agent.journal import Mark
from tain.agent.reconcile import WalkResult, walk
from tain.agent.source import SourceAgent
from tain.agent.watcher import Watcher

NOW = 1000.0


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[SourceAgent]:
    root = tmp_path / "src"
    root.mkdir()
    config = source_config(root, repo="r", sites=["http://127.0.0.1:9"], token="t", env={},
                           state_dir=tmp_path / "state")
    watcher = Watcher()
    made = SourceAgent(config, Timing(), watcher, LogDisplay(), stop=threading.Event(),
                       policy=Policy(), clock=lambda: NOW)
    yield made
    made.close()
    watcher.close()


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The top directory of every walk the agent makes."""
    seen: list[str] = []

    def counted(*args: object, **kwargs: object) -> WalkResult:
        seen.append(str(args[2]))
        return walk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(source_module, "walk", counted)
    return seen


def test_a_directory_read_by_the_walk_above_it_is_not_walked_again(
    agent: SourceAgent, walks: list[str]
) -> None:
    root = agent.config.directory
    (root / "new" / "a" / "b").mkdir(parents=True)
    (root / "new" / "a" / "b" / "f.txt").write_text("f")
    (root / "other").mkdir()
    (root / "other" / "g.txt").write_text("g")
    agent.journal.record_marks([Mark(p, NOW - 10, tree=True)
                                for p in ("new", "new/a", "new/a/b", "other")])
    agent._expand_trees()
    assert walks == ["new", "other"]
    assert agent.journal.ready_trees(NOW, agent.policy, 10) == []
    queued = {i.path for i in agent.journal.ready(NOW, agent.policy, 100)}
    assert queued == {"new", "new/a", "new/a/b", "new/a/b/f.txt", "other", "other/g.txt"}


def test_a_tree_marked_again_during_the_walk_is_walked_again(
    agent: SourceAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = agent.config.directory
    (root / "new" / "sub").mkdir(parents=True)
    agent.journal.record_marks([Mark(p, NOW - 10, tree=True) for p in ("new", "new/sub")])

    def walk_then_move_in(*args: object, **kwargs: object) -> WalkResult:
        result = walk(*args, **kwargs)  # type: ignore[arg-type]
        agent.journal.record_marks([Mark("new/sub", NOW - 5, tree=True)])  # after the read
        return result

    monkeypatch.setattr(source_module, "walk", walk_then_move_in)
    agent._expand_trees()
    assert [t.path for t in agent.journal.ready_trees(NOW, agent.policy, 10)] == ["new/sub"]

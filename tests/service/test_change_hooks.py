"""Site.on_change: hooks added and removed by background parts while request threads
run them after every commit."""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter

import pytest

from tain.service.hooks import ChangeHooks


def test_hooks_run_in_order_and_removed_ones_do_not() -> None:
    hooks, told = ChangeHooks(), list[object]()

    def first(repo: str) -> None:
        told.append(("first", repo))

    def second(repo: str) -> None:
        told.append(("second", repo))

    hooks.add(first)
    hooks.add(second)
    hooks.run("a")
    hooks.remove(first)
    hooks.remove(first)  # already gone: nothing happens
    hooks.run("b")
    assert told == [("first", "a"), ("second", "a"), ("second", "b")]
    assert len(hooks) == 1


def test_a_failing_hook_is_logged_and_the_others_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    hooks, told = ChangeHooks(), list[object]()

    def broken(repo: str) -> None:
        raise OSError(f"cannot tell about {repo}")

    hooks.add(broken)
    hooks.add(told.append)
    with caplog.at_level(logging.ERROR, logger="tain.site"):
        hooks.run("docs")
    assert told == ["docs"]
    assert "a change hook failed for docs" in caplog.text


def test_hooks_removed_meanwhile_never_make_a_run_skip_another() -> None:
    """Over a plain list, a removal during a run shifts the rest and the run skips one."""
    hooks, calls = ChangeHooks(), Counter[int]()
    pairs = 500
    transient = [(lambda repo: None) for _ in range(pairs)]
    for i, hook in enumerate(transient):
        hooks.add(hook)
        hooks.add(lambda repo, i=i: calls.update([i]))  # stays all along
    barrier, removed = threading.Barrier(2), threading.Event()
    runs = 0

    def remove_transient() -> None:
        barrier.wait(timeout=30)
        for hook in transient:
            hooks.remove(hook)
        removed.set()

    remover = threading.Thread(target=remove_transient)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        remover.start()
        barrier.wait(timeout=30)
        while not removed.is_set():
            hooks.run("r")
            runs += 1
        remover.join(timeout=30)
    finally:
        sys.setswitchinterval(interval)
    assert runs > 0
    assert calls == Counter({i: runs for i in range(pairs)})
    assert len(hooks) == pairs

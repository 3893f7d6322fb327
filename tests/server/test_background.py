"""tain.server.background.running: tasks start in order and stop in reverse; a start
that fails stops what had begun (itself too) and ends the startup with its error."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tain.server.background import Task, running


class Steps:
    """Tasks that write what they do into one journal, one of them maybe failing."""

    def __init__(self, fail_start: str = "", fail_stop: str = "") -> None:
        self.journal: list[str] = []
        self.fail_start, self.fail_stop = fail_start, fail_stop

    def task(self, name: str) -> Task:
        def start() -> None:
            self.journal.append(f"start {name}")
            if name == self.fail_start:
                raise OSError(f"{name} cannot start")

        def stop() -> None:
            self.journal.append(f"stop {name}")
            if name == self.fail_stop:
                raise OSError(f"{name} cannot stop")

        return Task(name, start, stop)


async def serve(tasks: list[Task], journal: list[str]) -> None:
    async with running(tasks):
        journal.append("serving")


def test_tasks_start_in_order_and_stop_in_reverse() -> None:
    steps = Steps()
    asyncio.run(serve([steps.task(n) for n in "abc"], steps.journal))
    assert steps.journal == ["start a", "start b", "start c", "serving",
                             "stop c", "stop b", "stop a"]


def test_a_failed_start_stops_what_began_and_raises() -> None:
    steps = Steps(fail_start="b")
    with pytest.raises(OSError, match="b cannot start"):
        asyncio.run(serve([steps.task(n) for n in "abc"], steps.journal))
    assert steps.journal == ["start a", "start b", "stop b", "stop a"]


def test_a_failed_stop_is_logged_and_the_others_still_stop(
        caplog: pytest.LogCaptureFixture) -> None:
    steps = Steps(fail_stop="b")
    with caplog.at_level(logging.ERROR, logger="tain.server"):
        asyncio.run(serve([steps.task(n) for n in "abc"], steps.journal))
    assert steps.journal[-3:] == ["stop c", "stop b", "stop a"]
    assert "stopping b failed" in caplog.text


def test_an_error_while_serving_stops_every_task() -> None:
    steps = Steps()

    async def crash() -> None:
        async with running([steps.task(n) for n in "ab"]):
            raise RuntimeError("the server died")

    with pytest.raises(RuntimeError, match="the server died"):
        asyncio.run(crash())
    assert steps.journal == ["start a", "start b", "stop b", "stop a"]

"""The alert engine: each check gathers facts, evaluates the rules (``tain.core.alerts``),
plans what changed (``tain.core.alertstate``), sends notifications and records the
alerts' state in the catalog. Delivery failures are retried by the dispatcher and,
if they persist, at the next check (the alert's ``last_sent_at`` stays behind); no
failure stops the engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tain.catalog.base import Catalog
from tain.core.alerts import Alert, Facts, evaluate
from tain.core.alertstate import OpenAlert, Step, plan
from tain.core.monitoring import AlertsConfig
from tain.monitor.channels import Delivery, Dispatcher, Notification

log = logging.getLogger("tain.alerts")
MAX_OPEN = 10_000
PRUNE_EVERY = 3600.0


@dataclass(frozen=True)
class CheckResult:
    steps: list[Step]
    deliveries: list[Delivery]


class AlertEngine:
    def __init__(self, catalog: Catalog, config: AlertsConfig, dispatcher: Dispatcher,
                 gather: Callable[[float], Facts], *, site_name: str,
                 clock: Callable[[], float]) -> None:
        self.catalog, self.config, self.dispatcher = catalog, config, dispatcher
        self.gather, self.site_name, self.clock = gather, site_name, clock
        self._pruned_at = 0.0
        self._lock = threading.Lock()  # the background loop and POST /alerts/check

    def check(self) -> CheckResult:
        """One round: returns what it did (for tests and logs)."""
        with self._lock:
            return self._check()

    def _check(self) -> CheckResult:
        now = self.clock()
        holding = evaluate(self.gather(now), self.config.rules)
        current = [r.as_open() for r in self.catalog.list_alerts(open_only=True,
                                                                 limit=MAX_OPEN)]
        steps = plan(current, holding, now, self.config.repeat_seconds)
        deliveries: list[Delivery] = []
        for step in steps:
            deliveries.extend(self._apply(step, now))
        self._prune(now)
        return CheckResult(steps, deliveries)

    def _apply(self, step: Step, now: float) -> list[Delivery]:
        alert, current = step.alert, step.current
        if step.kind == "fire" and alert is not None:
            sent = self._send("firing", alert, now, None)
            self.catalog.open_alert(alert, sent=_ok(sent))
            log.warning("alert: %s", alert.message)
            return sent
        if step.kind == "repeat" and alert is not None and current is not None:
            sent = self._send("repeat", alert, now, current.opened_at)
            self.catalog.update_alert(current.id, alert, sent=_ok(sent))
            return sent
        if step.kind == "update" and alert is not None and current is not None:
            if alert.message != current.message or alert.severity != current.severity:
                self.catalog.update_alert(current.id, alert, sent=False)
            return []
        if step.kind == "resolve" and current is not None:
            sent = self._send("resolved", _from_open(current), now, current.opened_at)
            self.catalog.resolve_alert(current.id)
            log.info("alert resolved: %s", current.message)
            return sent
        return []

    def _send(self, event: str, alert: Alert, now: float,
              opened_at: float | None) -> list[Delivery]:
        note = Notification(event, self.site_name, alert.rule, alert.subject, alert.message,
                            alert.severity, now, opened_at if opened_at is not None else now,
                            dict(alert.details))
        return self.dispatcher.send(note)

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        self.catalog.prune_alerts(resolved_before=now - self.config.keep_resolved_days * 86400)


def sample_notification(site_name: str, now: float) -> Notification:
    return Notification("test", site_name, "test", "channels",
                        "a test message from tain: alert delivery works", "info", now)


def _ok(deliveries: list[Delivery]) -> bool:
    """Sent when any channel took it (or there is none to send to)."""
    return not deliveries or any(d.ok for d in deliveries)


def _from_open(current: OpenAlert) -> Alert:
    return Alert(current.rule, current.subject, current.message, current.severity)

"""Alert state: which alerts are open, when they fired and were last sent, and the
recently resolved ones. Written by the alert engine only; status, not a change to
data, so not audited. At most one open row per alert key (the engine is the only
writer, once per check)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from tain.catalog import schema as t
from tain.catalog.sqlbase import SqlBase
from tain.core.alerts import Alert
from tain.core.alertstate import OpenAlert
from tain.errors import NotFound


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    key: str
    rule: str
    subject: str
    severity: str
    message: str
    details: dict[str, Any]
    opened_at: float
    last_sent_at: float | None
    sends: int
    resolved_at: float | None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "key": self.key, "rule": self.rule, "subject": self.subject,
            "severity": self.severity, "message": self.message, "details": self.details,
            "state": "open" if self.is_open else "resolved", "opened_at": self.opened_at,
            "last_sent_at": self.last_sent_at, "sends": self.sends,
            "resolved_at": self.resolved_at,
        }

    def as_open(self) -> OpenAlert:
        return OpenAlert(self.id, self.key, self.rule, self.subject, self.message,
                         self.severity, self.opened_at, self.last_sent_at, self.sends)


class AlertCatalog(SqlBase):
    def list_alerts(self, *, open_only: bool = False, limit: int = 100) -> list[AlertRecord]:
        """Open alerts first (oldest first), then resolved ones (newest first)."""
        a = t.alerts
        q = sa.select(a).order_by(a.c.resolved_at.is_not(None), a.c.resolved_at.desc(),
                                  a.c.opened_at, a.c.id)
        if open_only:
            q = q.where(a.c.resolved_at.is_(None))
        with self._db.read() as conn:
            return [_record(r) for r in conn.execute(q.limit(max(1, limit)))]

    def open_alert(self, alert: Alert, *, sent: bool) -> AlertRecord:
        now = self._clock()
        a = t.alerts
        with self._db.write() as conn:
            new_id = conn.execute(sa.insert(a).values(
                key=alert.key, rule=alert.rule, subject=alert.subject[:440],
                severity=alert.severity, message=alert.message,
                details=json.dumps(alert.details, default=str, sort_keys=True),
                opened_at=now, last_sent_at=now if sent else None, sends=1 if sent else 0,
                resolved_at=None,
            ).returning(a.c.id)).scalar_one()
            return _record(conn.execute(sa.select(a).where(a.c.id == new_id)).one())

    def update_alert(self, alert_id: int, alert: Alert, *, sent: bool) -> None:
        """Refresh an open alert's message and details; ``sent`` records a delivery."""
        a = t.alerts
        values: dict[Any, Any] = {
            "message": alert.message, "severity": alert.severity,
            "details": json.dumps(alert.details, default=str, sort_keys=True),
        }
        if sent:
            values |= {"last_sent_at": self._clock(), "sends": a.c.sends + 1}
        self._change(sa.update(a).where(a.c.id == alert_id, a.c.resolved_at.is_(None))
                     .values(values), alert_id)

    def resolve_alert(self, alert_id: int) -> None:
        a = t.alerts
        self._change(sa.update(a).where(a.c.id == alert_id, a.c.resolved_at.is_(None))
                     .values(resolved_at=self._clock()), alert_id)

    def prune_alerts(self, *, resolved_before: float) -> int:
        a = t.alerts
        with self._db.write() as conn:
            return int(conn.execute(sa.delete(a).where(
                a.c.resolved_at.is_not(None), a.c.resolved_at < resolved_before)).rowcount)

    def _change(self, statement: Any, alert_id: int) -> None:
        with self._db.write() as conn:
            if not conn.execute(statement).rowcount:
                raise NotFound(f"no open alert {alert_id}")


def _record(row: Row[Any]) -> AlertRecord:
    try:
        details = json.loads(row.details)
    except ValueError:
        details = {}
    return AlertRecord(row.id, row.key, row.rule, row.subject, row.severity, row.message,
                       details if isinstance(details, dict) else {}, row.opened_at,
                       row.last_sent_at, row.sends, row.resolved_at)

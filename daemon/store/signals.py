"""Named queries for what agents signal: signal files (``ALL_SESSIONS_COMPLETE.txt``),
recorded once per content until handled, and the latest ``status.txt`` of each agent."""

from __future__ import annotations

from typing import Any

from daemon.store.base import StoreBase


class SignalQueries(StoreBase):
    """Signals and the agents' reported progress."""

    def record_signal(
        self, *, kind: str, agent: str, path: str, sha256: str, body: str, now: float
    ) -> bool:
        """Record a signal file once per content; True when it is new."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO signals (kind, agent, path, sha256, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [kind, agent, path, sha256, body, now],
            )
            return cursor.rowcount == 1

    def unhandled_signals(self, kind: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM signals WHERE kind = ? AND handled_at IS NULL ORDER BY id", [kind]
            )
        )

    def mark_signal_handled(self, signal_id: int, now: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE signals SET handled_at = ? WHERE id = ?", [now, signal_id])

    def record_progress(self, agent: str, values: dict[str, Any]) -> bool:
        """Store the agent's latest status.txt; True when it changed."""
        existing = self.db.table("progress").get(agent) if self._has_progress(agent) else None
        if existing and existing["sha256"] == values["sha256"]:
            return False
        with self.transaction() as db:
            db.table("progress").upsert({"agent": agent, **values}, pk="agent")
        return True

    def _has_progress(self, agent: str) -> bool:
        return bool(self.db.execute("SELECT 1 FROM progress WHERE agent = ?", [agent]).fetchone())

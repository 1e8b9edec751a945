"""`MemoryEventLog`: the event log of a single worker, in its memory.

For an app on ``InMemoryDb`` (tests, demos): there is no other worker to share with, so
signals go nowhere and reading the log reads this dict.
"""

from __future__ import annotations

from pilothouse.serve.eventlog.base import EventLog, LoggedEvent, RunRecord, Signal

__all__ = ["MemoryEventLog"]


class MemoryEventLog(EventLog):
    """Events and run records in dicts; one process only."""

    def __init__(self, worker_id: str, *, retention: float = 86400.0) -> None:
        super().__init__(worker_id, retention=retention)
        self._run_rows: dict[str, RunRecord] = {}
        self._event_rows: dict[str, dict[int, LoggedEvent]] = {}

    # Writing to a dict needs no batching: rows are stored as they come, without a task.

    def add_run(self, record: RunRecord) -> None:
        self._run_rows.setdefault(record.run_id, record)

    def add_event(self, run_id: str, seq: int, name: str, data: str) -> None:
        self._event_rows.setdefault(run_id, {}).setdefault(seq, LoggedEvent(seq, name, data))
        self._wake((run_id,))

    async def flush(self) -> bool:
        return True

    async def _write(
        self, runs: list[RunRecord], events: list[tuple[str, int, str, str, float]]
    ) -> None:
        for record in runs:
            self.add_run(record)
        for run_id, seq, name, data, _ in events:
            self.add_event(run_id, seq, name, data)

    async def events_after(self, run_id: str, after: int, limit: int = 500) -> list[LoggedEvent]:
        rows = self._event_rows.get(run_id, {})
        return [rows[seq] for seq in sorted(rows) if seq > after][:limit]

    async def last_seq(self, run_id: str) -> int:
        return max(self._event_rows.get(run_id, {}), default=0)

    async def last_event(self, run_id: str) -> LoggedEvent | None:
        rows = self._event_rows.get(run_id)
        return rows[max(rows)] if rows else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._run_rows.get(run_id)

    async def publish(self, signal: Signal) -> None:
        return None

    async def start(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def prune(self, older_than: float) -> None:
        for run_id in [r for r, rec in self._run_rows.items() if rec.created_at < older_than]:
            del self._run_rows[run_id]
            self._event_rows.pop(run_id, None)

"""What a run reads from and writes to its session store.

A run with a store takes its session's lease first, so that runs of one session take turns
(across processes too): a tool's read-modify-write of the session state can then never lose an
update, and each run sees the history of the runs before it. It then reads the session state
and a bounded slice of history, appends its own run row, and at the end finalises that row and
writes the state back. Other runs' rows are never rewritten.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pilothouse.models.message import Message
from pilothouse.run.output import RunOutput, RunStatus

if TYPE_CHECKING:
    from pilothouse.db.base import SessionStore
    from pilothouse.db.lease import SessionLease

__all__ = ["SessionIO", "history_messages"]

logger = logging.getLogger("pilothouse")

# How long a run's lease lives without renewal: a crashed holder blocks its session this long.
LEASE_TTL = 30.0


class SessionIO:
    """The storage side of one run. `begin` before the first model call, `finish` at the end."""

    __slots__ = ("_lease_cm", "_state_at_start", "_version", "finished", "lease", "store")

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.lease: SessionLease | None = None
        self._lease_cm: contextlib.AbstractAsyncContextManager[SessionLease] | None = None
        self._version = 0
        self._state_at_start: dict[str, Any] = {}
        self.finished = False

    async def begin(
        self,
        out: RunOutput,
        *,
        default_state: dict[str, Any] | None,
        run_state: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Take the session's lease, store the run as running, and return the session state
        for this run: the agent's defaults, overlaid by the stored state, overlaid by the
        run's own ``session_state``."""
        session_id = out.session_id or ""
        if self.finished:
            raise RuntimeError("a SessionIO serves one run")
        self._lease_cm = self.store.session_lease(session_id, ttl=LEASE_TTL)
        self.lease = await self._lease_cm.__aenter__()
        await self.store.upsert_session(session_id, user_id=out.user_id, agent_id=out.agent_id)
        stored, self._version = await self.store.get_session_state(session_id)
        self._state_at_start = copy.deepcopy(stored)
        state = copy.deepcopy(default_state) if default_state else {}
        state.update(stored)
        if run_state:
            state.update(run_state)
        await self.store.insert_run(out.to_dict())
        return state

    async def history(
        self, session_id: str, *, num_runs: int, num_messages: int | None
    ) -> list[Message]:
        """The messages of the session's last completed runs, for the context."""
        runs = await self.store.get_last_runs(
            session_id, limit=num_runs, statuses=[RunStatus.completed.value]
        )
        return history_messages(runs, num_messages)

    async def finish(self, out: RunOutput) -> None:
        """Finalise the run's row and write the session state back; release the lease."""
        self.finished = True
        try:
            await self.store.update_run(out.to_dict())
            state = out.session_state
            if state is not None and state != self._state_at_start:
                await self._write_state(out.session_id or "", state)
        finally:
            await self.release()

    async def _write_state(self, session_id: str, state: dict[str, Any]) -> None:
        if self.lease is not None and not self.lease.lost:
            version = await self.store.set_session_state(
                session_id, state, expected_version=self._version
            )
            if version is not None:
                return
        # The lease lapsed and another run wrote in between: apply this run's changes on top
        # of the newer state rather than overwrite it.
        start = self._state_at_start
        changed = {k: v for k, v in state.items() if start.get(k, _MISSING) != v}
        removed = [k for k in start if k not in state]
        logger.warning("session %s: state changed under this run; merging its changes", session_id)

        def merge(current: dict[str, Any]) -> dict[str, Any]:
            merged = {k: v for k, v in current.items() if k not in removed}
            merged.update(changed)
            return merged

        await self.store.update_session_state(session_id, merge)

    async def release(self) -> None:
        """Give the lease back (idempotent)."""
        cm, self._lease_cm = self._lease_cm, None
        if cm is not None:
            await cm.__aexit__(None, None, None)


_MISSING = object()


def history_messages(runs: Sequence[dict[str, Any]], num_messages: int | None) -> list[Message]:
    """Turn stored runs (oldest first) into the messages to replay before a new input.

    System messages and messages that were themselves history are left out. With
    ``num_messages`` only the last messages are kept, starting at a user message, so that a
    tool result is never sent without the assistant message that called the tool.
    """
    messages: list[Message] = []
    for run in runs:
        for data in run.get("messages") or ():
            if data.get("role") == "system" or data.get("from_history"):
                continue
            message = Message.from_dict(data)
            message.from_history = True
            message.metrics = None
            messages.append(message)
    if num_messages is not None and len(messages) > num_messages:
        messages = messages[len(messages) - num_messages :]
        while messages and messages[0].role != "user":
            messages.pop(0)
    return messages

"""What a run reads from and writes to its session store.

A run with a store takes its session's lease first, so that runs of one session take turns
(across processes too): a tool's read-modify-write of the session state can then never lose an
update, and each run sees the history of the runs before it. It then reads the session state
and a bounded slice of history, appends its own run row, and at the end finalises that row and
writes the state back. Other runs' rows are never rewritten.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from pilothouse.db.errors import DuplicateRunError, RunNotFoundError
from pilothouse.db.lease import LeaseRenewal, SessionLease, new_lease_owner, wait_for_lease
from pilothouse.exceptions import ReentrantRunError
from pilothouse.models.message import Message
from pilothouse.run.output import (
    MEDIA_KINDS,
    RunInput,
    RunOutput,
    RunStatus,
    restore_input_media,
)

if TYPE_CHECKING:
    from pilothouse.db.base import SessionStore
    from pilothouse.db.records import RunStart

__all__ = [
    "INTERRUPTED",
    "SessionIO",
    "enter_tool_call",
    "history_messages",
    "leave_tool_call",
    "mark_interrupted",
    "settle_if_interrupted",
]

logger = logging.getLogger("pilothouse")

# How long a run's lease lives without renewal: a crashed holder blocks its session this long,
# and the run it was running is recognised as interrupted after that. It is renewed every
# third of that while the run is alive.
LEASE_TTL = 10.0
# What an interrupted run says, as the content of its stored run.
INTERRUPTED = (
    "The run was interrupted: the process running it stopped before the run ended. "
    "Continue it with continue_run()."
)


class SessionIO:
    """The storage side of one run. `begin` before the first model call, `finish` at the end.

    Each is one store call (`SessionStore.start_run`, `SessionStore.finish_run`), which the
    SQL stores turn into one transaction.
    """

    __slots__ = (
        "_held",
        "_owner",
        "_renewal",
        "_session_id",
        "_state_at_start",
        "_version",
        "finished",
        "lease",
        "store",
    )

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.lease: SessionLease | None = None
        self._renewal: LeaseRenewal | None = None
        self._owner: str | None = None
        self._session_id = ""
        # Whether this run may hold the lease in the store and so has to give it back.
        self._held = False
        self._version = 0
        self._state_at_start: dict[str, Any] = {}
        self.finished = False

    async def begin(
        self,
        out: RunOutput,
        *,
        default_state: dict[str, Any] | None,
        run_state: dict[str, Any] | None,
        resume: bool = False,
        rerun: bool = False,
    ) -> dict[str, Any]:
        """Take the session's lease, store the run as running, and return the session state
        for this run: the agent's defaults, overlaid by the stored state, overlaid by the
        run's own ``session_state``.

        ``resume=True`` continues a run that is already stored (a paused run, perhaps
        started by another process): its row is left for `finish` to finalise.

        ``rerun=True`` is for an execution of a run that may have been executed before by a
        process that died (a durable-execution engine re-executing it): the lease owner is
        derived from the run id, so that the lease the dead execution held is taken over at
        once, and a row it stored is reused (as with ``resume``) instead of refused.
        """
        if self.finished or self._owner is not None:
            raise RuntimeError("a SessionIO serves one run")
        session_id = self._session_id = out.session_id or ""
        if (id(self.store), session_id) in _sessions_of_callers.get():
            raise ReentrantRunError(
                f"a tool of a run on session {session_id!r} started another run on that same "
                "session: it would wait for the run that waits for it. Give the inner run "
                "its own session_id."
            )
        owner = self._owner = f"run:{out.run_id}" if rerun else new_lease_owner()
        run = out.to_dict(compact=True)
        store = self.store

        async def take() -> RunStart | None:
            nonlocal resume
            try:
                return await store.start_run(
                    run, lease_owner=owner, lease_ttl=LEASE_TTL, resume=resume
                )
            except DuplicateRunError:
                if not rerun or resume:
                    raise
            # Stored by an earlier execution of this run: carry on with its row.
            resume = True
            return await store.start_run(run, lease_owner=owner, lease_ttl=LEASE_TTL, resume=True)

        try:
            started = await wait_for_lease(take, session_id, ttl=LEASE_TTL, wait=None)
        except BaseException as exc:
            # A start refused for what it was given changed nothing. One cancelled, or cut
            # off with the database, may have committed just before: `release` gives the
            # lease back then, rather than leave the session blocked until it expires.
            self._held = not isinstance(exc, _NOTHING_CHANGED)
            raise
        self._held = True
        if started.took_over:
            # The lease was left by a process that died: its run never ended.
            await mark_interrupted(store, session_id, exclude=out.run_id)
        self.lease = SessionLease(session_id, owner, LEASE_TTL)
        self._renewal = LeaseRenewal(store, self.lease)
        stored = started.session_state
        self._version = started.state_version
        self._state_at_start = copy.deepcopy(stored)
        state = copy.deepcopy(default_state) if default_state else {}
        state.update(stored)
        if run_state:
            state.update(run_state)
        return state

    async def history(
        self, session_id: str, *, num_runs: int, num_messages: int | None
    ) -> list[Message]:
        """The messages of the session's last completed runs, for the context."""
        runs = await self.store.get_last_runs(
            session_id, limit=num_runs, statuses=[RunStatus.completed.value]
        )
        return history_messages(runs, num_messages)

    async def checkpoint(self, out: RunOutput) -> None:
        """Store the run's progress so far (it stays RUNNING), to resume from if it stops."""
        if self.lease is not None and not self.lease.lost:
            # finish_run without a state or a lease to release is the store's fast path for
            # replacing the run's row (one statement, one transaction).
            await self.store.finish_run(out.to_dict(compact=True))

    async def finish(self, out: RunOutput) -> None:
        """Finalise the run's row and write the session state back; release the lease.

        ``finished`` turns True only once the row is written: a write that fails keeps the
        lease, so that the caller can try again (without the session state, say) and the
        stored status still becomes the returned one.
        """
        if self.lease is None:
            # begin did not complete. If it was cut off (cancelled) after the store committed
            # the run's row, that row says RUNNING: finalise it, and give the lease back.
            self.finished = True
            if self._held and self._owner is not None:
                try:
                    if await self.store.finish_run(
                        out.to_dict(compact=True), lease_owner=self._owner
                    ):
                        self._held = False
                except RunNotFoundError:
                    pass  # nothing was stored
                except Exception:
                    logger.warning("run %s: could not store its end", out.run_id, exc_info=True)
            await self.release()
            return
        await self._stop_renewal()
        state = out.session_state
        changed = state is not None and state != self._state_at_start
        lease_kept = not self.lease.lost
        written = await self.store.finish_run(
            out.to_dict(compact=True),
            lease_owner=self.lease.owner,
            state=state if changed and lease_kept else None,
            expected_version=self._version,
        )
        self.finished = True
        if written:
            self._held = False  # released in the same step
        try:
            if changed and not (written and lease_kept):
                assert state is not None
                await self._merge_state(state)
        finally:
            await self.release()

    async def _merge_state(self, state: dict[str, Any]) -> None:
        # The lease lapsed, or another writer changed the state in between: apply this
        # run's changes on top of the newer state rather than overwrite it.
        session_id = self._session_id
        start = self._state_at_start
        changed = {k: v for k, v in state.items() if start.get(k, _MISSING) != v}
        removed = [k for k in start if k not in state]
        logger.warning("session %s: state changed under this run; merging its changes", session_id)

        def merge(current: dict[str, Any]) -> dict[str, Any]:
            merged = {k: v for k, v in current.items() if k not in removed}
            merged.update(changed)
            return merged

        await self.store.update_session_state(session_id, merge)

    async def _stop_renewal(self) -> None:
        renewal, self._renewal = self._renewal, None
        if renewal is not None:
            await renewal.stop()

    async def release(self) -> None:
        """Give the lease back (idempotent)."""
        await self._stop_renewal()
        if self._held and self._owner is not None:
            self._held = False
            try:
                await self.store.release_session_lease(self._session_id, self._owner)
            except Exception:  # the lease expires by itself; the run's own outcome matters more
                logger.warning("session %s: lease release failed", self._session_id, exc_info=True)


_MISSING = object()
_NOTHING_CHANGED = (DuplicateRunError, RunNotFoundError, TypeError, ValueError)


def history_messages(runs: Sequence[dict[str, Any]], num_messages: int | None) -> list[Message]:
    """Turn stored runs (oldest first) into the messages to replay before a new input.

    System messages and messages that were themselves history are left out. With
    ``num_messages`` only the last messages are kept, starting at a user message, so that a
    tool result is never sent without the assistant message that called the tool.
    """
    messages: list[Message] = []
    for run in runs:
        own = [
            Message.from_dict(data)
            for data in run.get("messages") or ()
            if data.get("role") != "system" and not data.get("from_history")
        ]
        stored_input = run.get("input")
        if stored_input and any(stored_input.get(kind) for kind in MEDIA_KINDS):
            # Stored runs keep their media once, in their input.
            restore_input_media(own, RunInput.from_dict(stored_input))
        for message in own:
            message.from_history = True
            message.metrics = None
        messages.extend(own)
    if num_messages is not None and len(messages) > num_messages:
        messages = messages[len(messages) - num_messages :]
        while messages and messages[0].role != "user":
            messages.pop(0)
    return messages


async def mark_interrupted(store: SessionStore, session_id: str, *, exclude: str | None) -> None:
    """Mark the session's RUNNING runs (but ``exclude``) as interrupted: status error.

    Called by the holder of the session's lease: no other run of the session can be in
    flight, so a run still RUNNING was left so by a process that died.
    """
    runs = await store.get_last_runs(
        session_id, limit=_INTERRUPTED_WINDOW, statuses=[RunStatus.running.value]
    )
    for data in runs:
        if data.get("run_id") != exclude:
            await store.update_run(_interrupted(data))
            logger.warning("run %s was interrupted; marked as failed", data.get("run_id"))


async def settle_if_interrupted(store: SessionStore, data: dict[str, Any]) -> dict[str, Any]:
    """A stored run as it really is: one left RUNNING with nobody holding its session's
    lease was interrupted, and is marked so (and returned so)."""
    if data.get("status") != RunStatus.running.value or not data.get("session_id"):
        return data
    session_id = str(data["session_id"])
    probe = new_lease_owner()
    if not await store.acquire_session_lease(session_id, probe, LEASE_TTL):
        return data  # a live run holds the session: it is running
    try:
        fresh = await store.get_run(str(data["run_id"]))
        if fresh is None or fresh.get("status") != RunStatus.running.value:
            return fresh or data
        marked = _interrupted(fresh)
        await store.update_run(marked)
        return marked
    finally:
        await store.release_session_lease(session_id, probe)


def _interrupted(data: dict[str, Any]) -> dict[str, Any]:
    marked = dict(data)
    marked["status"] = RunStatus.error.value
    marked["content"] = INTERRUPTED
    marked["content_type"] = "str"
    return marked


# How far back the runs of a session are searched for interrupted ones: runs of a session
# take turns, so a run left RUNNING is among the last few.
_INTERRUPTED_WINDOW = 10


# The sessions (store, session id) whose runs the current code is a tool call of.
_sessions_of_callers: ContextVar[frozenset[tuple[int, str]]] = ContextVar(
    "pilothouse_sessions_of_callers", default=frozenset()
)


def enter_tool_call(session_io: SessionIO) -> Token[frozenset[tuple[int, str]]] | None:
    """Mark what follows (a tool call) as running inside this run's session, so that a run
    it starts on the same session fails at once instead of waiting forever. Undo it with
    `leave_tool_call`."""
    if session_io.lease is None:
        return None
    key = (id(session_io.store), session_io.lease.session_id)
    return _sessions_of_callers.set(_sessions_of_callers.get() | {key})


def leave_tool_call(token: Token[frozenset[tuple[int, str]]] | None) -> None:
    """Undo `enter_tool_call`."""
    if token is not None:
        _sessions_of_callers.reset(token)

"""`DBOSAgent`: an Agent whose runs are DBOS workflows.

Each run is one workflow, its id the run id. Inside it the agent runs as usual, on a copy of
the agent whose model makes each request as a DBOS step (`DBOSModel`) and whose tools make
each call a DBOS step (`DBOSFunction`). When a process dies mid-run, DBOS executes the
workflow again (on ``DBOS.launch()`` of the restarted process, or on another worker of a
queue): the run starts over with the same run id, finished steps come back from DBOS's
records instead of running again, and the run is stored once in the agent's db, ending with
its final status. A run that pauses for a person waits durably, in ``DBOS.recv``, for the
answers sent by `DBOSAgent.continue_run` from any process.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import pickle
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, Literal, overload

from dbos import DBOS, Queue, SetWorkflowID, WorkflowHandleAsync
from dbos import error as dbos_errors

from pilothouse.agent import Agent, AsyncRunStream, RunOutput, RunStatus, ToolExecution
from pilothouse.durable import background
from pilothouse.durable.channels import Stop, listen, publish
from pilothouse.durable.model import DBOSModel, forget
from pilothouse.durable.stops import (
    ANSWERS_TOPIC,
    SEGMENT_KEY,
    DurableRunError,
    Failed,
    NoSuchStopError,
    current_segment,
    runs_here,
    settle,
    stop_key,
    wait_for_stop,
)
from pilothouse.durable.stream import DurableRunStream
from pilothouse.durable.tools import durable_tools
from pilothouse.exceptions import ContinueRunError, RunNotFoundError
from pilothouse.run.events import BaseRunEvent
from pilothouse.run.ids import new_id
from pilothouse.run.pause import check_answers

__all__ = ["DBOSAgent"]

logger = logging.getLogger("pilothouse")

_names: set[str] = set()
_names_lock = threading.Lock()
# A paused run waits this long for its answers by default, then its workflow ends with the
# run paused (it can still be continued with the plain Agent).
DEFAULT_PAUSE_TIMEOUT = 24 * 3600.0


class DBOSAgent:
    """Runs an `Agent` durably: each run a DBOS workflow, each model request and each tool
    call a DBOS step.

    Configure and launch DBOS as its documentation says, after making the DBOSAgent (its
    workflow must be registered before ``DBOS.launch()``, in every process that may run it)::

        agent = Agent(name="support", model=..., tools=[...], db=SqliteDb("agents.db"))
        durable = DBOSAgent(agent)
        DBOS(config={"name": "support-app", "system_database_url": "sqlite:///dbos.sqlite"})
        DBOS.launch()
        out = durable.run("Where is my order?", session_id="s1")

    Args:
        agent: The agent to run. It is not changed; later changes to its model or tools are
            not seen by this wrapper.
        name: A name unique among the DBOSAgents of the application, the same in every
            process (the workflow is ``<name>.run``, its steps ``<name>.model`` and
            ``<name>.tool.<tool name>``). Defaults to the agent's name.
        pause_timeout: How long (seconds) a paused run waits for its answers. Then its
            workflow ends and the run stays paused (continue it with ``agent.continue_run``).
        max_recovery_attempts: How often DBOS may start the workflow again after a crash
            before giving up on it (DBOS's default when None).
    """

    def __init__(
        self,
        agent: Agent,
        *,
        name: str | None = None,
        pause_timeout: float = DEFAULT_PAUSE_TIMEOUT,
        max_recovery_attempts: int | None = None,
    ) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"DBOSAgent(): agent must be an Agent, not {type(agent).__name__}.")
        name = name if name is not None else agent.name
        if not isinstance(name, str) or not name:
            raise ValueError(
                "DBOSAgent(): give the agent a name (Agent(name=...)) or pass name=...: it "
                "names the workflow and steps DBOS records, in every process."
            )
        if not pause_timeout > 0:
            raise ValueError(f"DBOSAgent(): pause_timeout must be > 0, not {pause_timeout!r}.")
        with _names_lock:
            if name in _names:
                raise ValueError(f"DBOSAgent(): a DBOSAgent named {name!r} exists already.")
            _names.add(name)
        self.agent = agent
        self.name = name
        self.pause_timeout = float(pause_timeout)
        # Fixed now, so that the wrapper's copy stores runs under the agent's own id.
        _ = agent.id
        durable = copy.copy(agent)
        durable.model = DBOSModel(_model_of(agent), step_name=f"{name}.model")
        durable.tools = durable_tools(agent.tools, name)
        self._durable = durable

        async def run_workflow(input: Any, options: dict[str, Any]) -> RunOutput:
            return await self._execute(input, options)

        extra: dict[str, Any] = {}
        if max_recovery_attempts is not None:
            extra["max_recovery_attempts"] = max_recovery_attempts
        self._workflow = DBOS.workflow(name=f"{name}.run", **extra)(run_workflow)

    def __repr__(self) -> str:
        return f"DBOSAgent(name={self.name!r}, agent={self.agent!r})"

    # ------------------------------------------------------------------ the workflow

    async def _execute(self, input: Any, options: dict[str, Any]) -> RunOutput:
        """The body of the workflow: the run, and each continuation after a pause."""
        run_id = DBOS.workflow_id
        assert run_id is not None
        try:
            stream = self._durable.arun(
                input, stream=True, stream_events=True, run_id=run_id, rerun=True, **options
            )
            out = await _follow(run_id, stream)
            segment = 0
            while True:
                # Recorded before callers here are told, so that what they do next (continue
                # the paused run, read it) finds it.
                await DBOS.set_event_async(stop_key(segment), out)
                publish(run_id, Stop(segment, out))
                if out.status is not RunStatus.paused:
                    return out
                answers = await self._answers(out, segment)
                if answers is None:
                    logger.warning(
                        "run %s: no answers within %ss; it stays paused", run_id, self.pause_timeout
                    )
                    return out
                segment += 1
                await DBOS.set_event_async(SEGMENT_KEY, segment)
                stream = self._durable.acontinue_run(
                    out, updated_tools=answers, stream=True, stream_events=True, rerun=True
                )
                out = await _follow(run_id, stream)
        except Exception as exc:
            # Callers in this process wait for a stop that will not come (a cancelled task
            # is not told: whoever cancelled it is stopping this loop anyway).
            publish(run_id, Failed(exc))
            raise
        except dbos_errors.DBOSBaseException as exc:
            # DBOS stops this execution: the workflow was cancelled, or another execution
            # owns it now (which will store the run).
            publish(run_id, Failed(DurableRunError(f"run {run_id!r}: {exc}")))
            raise
        finally:
            forget(run_id)

    async def _answers(self, paused: RunOutput, segment: int) -> list[ToolExecution] | None:
        """Wait durably for valid answers to the paused run; None after ``pause_timeout``."""
        while True:
            message = await DBOS.recv_async(ANSWERS_TOPIC, timeout_seconds=self.pause_timeout)
            if message is None:
                return None
            if not isinstance(message, dict) or message.get("segment") != segment:
                logger.warning("run %s: ignoring answers meant for another pause", paused.run_id)
                continue
            answers = list(message.get("answers") or ())
            try:
                check_answers(paused, answers)
            except ContinueRunError as exc:
                logger.warning("run %s: ignoring answers: %s", paused.run_id, exc)
                continue
            return answers

    # ------------------------------------------------------------------ running

    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[False] = False,
        run_id: str | None = None,
        **options: Any,
    ) -> RunOutput: ...

    @overload
    def run(
        self, input: Any = None, *, stream: Literal[True], run_id: str | None = None, **options: Any
    ) -> Iterator[BaseRunEvent]: ...

    def run(
        self, input: Any = None, *, stream: bool = False, run_id: str | None = None, **options: Any
    ) -> RunOutput | Iterator[BaseRunEvent]:
        """Run the agent durably and return its `RunOutput` once it stops: completed, failed,
        or paused for a person (then its workflow keeps waiting for `continue_run`).

        ``run_id`` makes the call idempotent: a run with that id that exists already is not
        started again; its output at its latest stop is returned. ``stream=True`` returns
        its events instead, live while each step runs (``stream_events=True`` for the
        lifecycle events too); closing the stream early stops watching, not the run.
        Other options as for `Agent.run` (they are stored by DBOS: they must be picklable).
        """
        if stream:
            events: DurableRunStream = self.arun(input, stream=True, run_id=run_id, **options)
            return background.iterate(events)
        output: RunOutput = background.run(self.arun(input, run_id=run_id, **options))
        return output

    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[False] = False,
        run_id: str | None = None,
        **options: Any,
    ) -> Coroutine[Any, Any, RunOutput]: ...

    @overload
    def arun(
        self, input: Any = None, *, stream: Literal[True], run_id: str | None = None, **options: Any
    ) -> DurableRunStream: ...

    def arun(
        self, input: Any = None, *, stream: bool = False, run_id: str | None = None, **options: Any
    ) -> Coroutine[Any, Any, RunOutput] | DurableRunStream:
        """Async `run`: ``await durable.arun(...)``, or ``async for`` over it with stream=True.

        The workflow runs on the caller's event loop (a paused run waits there).
        """
        if type(stream) is not bool:
            raise TypeError(f"run(): stream must be True or False, not {stream!r}.")
        stream_events = options.pop("stream_events", False)
        if type(stream_events) is not bool:
            raise TypeError(f"run(): stream_events must be True or False, not {stream_events!r}.")
        run_id, options = self._check_run(input, run_id, options)
        if stream:
            return DurableRunStream(
                lambda: self._start(input, run_id, options), run_id, stream_events=stream_events
            )
        return self._run_to_stop(input, run_id, options)

    def _check_run(
        self, input: Any, run_id: str | None, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Check the run's arguments as the agent does, now, before anything is stored; fix
        what must not change when the workflow is executed again (the session)."""
        for reserved in ("rerun", "stream", "stream_events"):
            if reserved in options:
                raise TypeError(f"run(): {reserved} is not an option of a durable run.")
        if run_id is None:
            run_id = new_id()
        elif not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run(): run_id must be a non-empty str, not {run_id!r}.")
        options = dict(options)
        if options.get("session_id") is None:
            # Chosen here, not by the agent: a new one on each execution would store the run
            # executed again in another session.
            options["session_id"] = self.agent.session_id or new_id()
        # Planning a run checks every argument without starting anything.
        self._durable.arun(input, stream=True, run_id=run_id, **options)
        try:
            pickle.dumps((input, options))
        except Exception as exc:
            raise TypeError(
                "run(): DBOS stores a durable run's input and options, so they must be "
                f"picklable: {type(exc).__name__}: {exc}"
            ) from exc
        return run_id, options

    async def _start(
        self, input: Any, run_id: str, options: dict[str, Any]
    ) -> WorkflowHandleAsync[RunOutput]:
        with _launched_dbos(), SetWorkflowID(run_id):
            return await DBOS.start_workflow_async(self._workflow, input, options)

    async def _run_to_stop(self, input: Any, run_id: str, options: dict[str, Any]) -> RunOutput:
        listener = listen(run_id)
        try:
            handle = await self._start(input, run_id, options)
            here = runs_here(handle)
            output = await wait_for_stop(run_id, None, listener=listener, remote=not here)
        finally:
            listener.close()
        await settle(run_id, output, handle if here else None)
        return output

    def enqueue(
        self, input: Any = None, *, queue: Queue | str, run_id: str | None = None, **options: Any
    ) -> str:
        """Put a run on a DBOS queue (registered with ``DBOS.register_queue``) and return its
        run id at once; a process listening to the queue executes it. Follow it with
        `wait_run_output` or `get_run_output`."""
        return background.run(self.aenqueue(input, queue=queue, run_id=run_id, **options))

    async def aenqueue(
        self, input: Any = None, *, queue: Queue | str, run_id: str | None = None, **options: Any
    ) -> str:
        """Async `enqueue`."""
        run_id, options = self._check_run(input, run_id, options)
        with _launched_dbos():
            if isinstance(queue, str):
                found = await DBOS.retrieve_queue_async(queue)
                if found is None:
                    raise ValueError(
                        f"enqueue(): no DBOS queue named {queue!r}; register it first with "
                        f"DBOS.register_queue({queue!r})."
                    )
                queue = found
            with SetWorkflowID(run_id):
                await queue.enqueue_async(self._workflow, input, options)
        return run_id

    # ------------------------------------------------------------------ paused runs

    def continue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        run_id: str | None = None,
        updated_tools: Sequence[ToolExecution] | None = None,
        timeout: float | None = None,
    ) -> RunOutput:
        """Send the answers to a paused run, from any process, and return its output at its
        next stop.

        Answer as for `Agent.continue_run`: on the paused output's tool executions (pass it
        as ``run_response``), or as ``updated_tools`` with ``run_id``. The run continues in
        the process whose workflow waits for the answers.

        Raises:
            ContinueRunError: The run is not paused, no longer waits, or an answer is
                missing. Nothing is sent.
            RunNotFoundError: No such durable run.
            TimeoutError: ``timeout`` seconds passed before the run stopped again (it goes on).
        """
        return background.run(
            self.acontinue_run(
                run_response, run_id=run_id, updated_tools=updated_tools, timeout=timeout
            )
        )

    async def acontinue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        run_id: str | None = None,
        updated_tools: Sequence[ToolExecution] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - as in the sync continue_run
    ) -> RunOutput:
        """Async `continue_run`."""
        if run_response is not None and not isinstance(run_response, RunOutput):
            raise TypeError(
                "continue_run(): run_response must be the paused RunOutput, "
                f"not {type(run_response).__name__}."
            )
        the_id = run_id or (run_response.run_id if run_response is not None else None)
        if the_id is None:
            raise TypeError("continue_run(): pass the paused run or its run_id.")
        with _launched_dbos():
            segment = await current_segment(the_id)
        paused = await DBOS.get_event_async(the_id, stop_key(segment), timeout_seconds=0)
        if paused is None:
            status = await DBOS.get_workflow_status_async(the_id)
            if status is None:
                raise RunNotFoundError(f"continue_run(): no durable run {the_id!r}.")
            raise ContinueRunError(f"continue_run(): run {the_id!r} is running, not paused.")
        if paused.status is not RunStatus.paused:
            raise ContinueRunError(
                f"continue_run(): run {the_id!r} is {paused.status.value.lower()}, not paused."
            )
        status = await DBOS.get_workflow_status_async(the_id)
        if status is None or status.status != "PENDING":
            raise ContinueRunError(
                f"continue_run(): run {the_id!r} no longer waits for answers (it waits "
                "pause_timeout at most); continue it with the agent's own continue_run()."
            )
        answers = list(updated_tools) if updated_tools is not None else None
        if answers is None and run_response is not None:
            answers = list(run_response.tools)
        check_answers(paused, answers)
        listener = listen(the_id)
        try:
            await DBOS.send_async(
                the_id, {"segment": segment, "answers": answers}, topic=ANSWERS_TOPIC
            )
            output = await wait_for_stop(the_id, segment + 1, listener=listener, within=timeout)
        except NoSuchStopError as exc:
            raise ContinueRunError(
                f"continue_run(): run {the_id!r} stopped waiting for answers before they came."
            ) from exc
        finally:
            listener.close()
        await settle(the_id, output)
        return output

    # ------------------------------------------------------------------ reading runs

    def get_run_output(self, run_id: str) -> RunOutput | None:
        """The run as it stands: as stored in the agent's db when it has one, else as at its
        last stop (None while it has not stopped yet, or when it is unknown)."""
        return background.run(self.aget_run_output(run_id))

    async def aget_run_output(self, run_id: str) -> RunOutput | None:
        """Async `get_run_output`."""
        if self.agent.db is not None:
            stored = await self.agent.aget_run_output(run_id)
            if stored is not None:
                return stored
        segment = await current_segment(run_id)
        found = await DBOS.get_event_async(run_id, stop_key(segment), timeout_seconds=0)
        return found  # type: ignore[no-any-return]

    def wait_run_output(self, run_id: str, *, timeout: float | None = 60.0) -> RunOutput:
        """Wait until the run stops (completed, failed, or paused for a person) and return
        its output. Raises TimeoutError after ``timeout`` seconds (the run goes on)."""
        return background.run(self.await_run_output(run_id, timeout=timeout))

    async def await_run_output(
        self,
        run_id: str,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - as in the sync wait_run_output
    ) -> RunOutput:
        """Async `wait_run_output`."""
        listener = listen(run_id)
        try:
            output = await wait_for_stop(run_id, None, listener=listener, within=timeout)
        finally:
            listener.close()
        await settle(run_id, output)
        return output


@contextlib.contextmanager
def _launched_dbos() -> Iterator[None]:
    """Say what to do when DBOS is not there yet, rather than how DBOS notices."""
    try:
        yield
    except dbos_errors.DBOSException as exc:
        text = str(exc)
        if "launched" in text or "No DBOS was created" in text:
            raise RuntimeError(
                "durable runs need DBOS configured and launched: DBOS(config={...}) then "
                f"DBOS.launch(), after making the DBOSAgents ({text})"
            ) from exc
        raise


async def _follow(run_id: str, stream: AsyncRunStream) -> RunOutput:
    """Drive one part of the run, telling listeners in this process each event."""
    async for event in stream:
        publish(run_id, event)
    return stream.output


def _model_of(agent: Agent) -> Any:
    if agent.model is not None:
        return agent.model
    from pilothouse.models.registry import default_model

    return default_model()

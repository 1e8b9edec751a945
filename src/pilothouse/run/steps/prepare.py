"""Step *prepare*: everything before the first model request.

A new run takes its session (lease, stored state, history, memories), resolves its
dependencies and builds the messages. A continued run loads the stored run instead and picks
up where it stopped. Both end with the tools of the run resolved into ``state.request``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pilothouse.exceptions import ContinueRunError, RunNotFoundError
from pilothouse.models.base import ModelRequest, ModelResponse
from pilothouse.models.message import Message
from pilothouse.run import events as ev
from pilothouse.run.context import (
    attach_media,
    build_system_message,
    build_user_messages,
    resolve_dependencies,
)
from pilothouse.run.output import RunOutput, RunStatus
from pilothouse.run.pause import apply_answers, is_waiting
from pilothouse.run.run_context import RunContext
from pilothouse.run.session import SessionIO
from pilothouse.run.steps.model_request import Next, take_response
from pilothouse.run.steps.tool_batch import plan_continued_batch
from pilothouse.tools import Function, aresolve_toolset, cached_toolset

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pilothouse.run.output import ToolExecution
    from pilothouse.run.plan import Resume
    from pilothouse.run.state import RunState

__all__ = ["prepare", "prepare_continued"]


async def prepare(state: RunState) -> Next:
    """Start a new run: session, history, memories, dependencies, messages and tools."""
    plan = state.plan
    agent = state.agent
    out = state.out
    ctx = state.ctx
    out.status = RunStatus.running
    if state.lifecycle:
        state.emit(
            ev.RunStartedEvent(
                **state.ids, model=state.model.id, model_provider=state.model.provider
            )
        )
    history: list[Message] = []
    memories = ""
    store = plan.store
    if store is not None:
        session_io = state.session_io = SessionIO(store)
        state.handle.waiting_task = state.current_task()
        try:
            ctx.session_state = await session_io.begin(
                out,
                default_state=agent.session_state,
                run_state=plan.session_state,
                rerun=plan.rerun,
            )
            if plan.add_history_to_context:
                history = await session_io.history(
                    ctx.session_id,
                    num_runs=agent.num_history_runs,
                    num_messages=agent.num_history_messages,
                )
            if agent.add_memories_to_context and ctx.user_id is not None:
                from pilothouse.memory import format_memories_for_context

                memories = format_memories_for_context(await store.get_user_memories(ctx.user_id))
        finally:
            state.handle.waiting_task = None
    if plan.dependencies:
        ctx.dependencies = await resolve_dependencies(plan.dependencies, agent, ctx)
    messages = state.messages
    system = build_system_message(
        agent,
        ctx,
        add_dependencies=plan.add_dependencies_to_context,
        add_session_state=plan.add_session_state_to_context,
        memories=memories,
    )
    if system is not None:
        messages.append(system)
    messages.extend(history)
    messages.extend(build_user_messages(plan.input))
    if plan.media:
        attach_media(messages, plan.media)
    out.messages = messages
    knowledge = await _knowledge(state, first=True) if agent.knowledge is not None else ()
    await _resolve_tools(state, agent.tool_choice, knowledge)
    return Next.MODEL


async def prepare_continued(state: RunState) -> Next:
    """Load a stored run being continued and return where it picks up.

    A paused run takes the caller's answers and runs the batch it paused on. A failed,
    cancelled or interrupted run resumes from its last checkpoint: the tool calls of an
    unfinished batch that did not finish run now, otherwise the model is asked again (or,
    when the run failed after its answer, it just finishes).
    """
    plan = state.plan
    agent = state.agent
    resume = plan.resume
    assert resume is not None
    store = plan.store
    if store is not None:
        session_io = SessionIO(store)
        state.handle.waiting_task = state.current_task()
        try:
            out, session_state = await _load_stored(state, resume, session_io)
            pending = _take_answers(state, out, resume, lease_held=True)
        except BaseException:
            # Nothing is stored for a run that could not be continued: it stays as it was.
            await session_io.release()
            raise
        finally:
            state.handle.waiting_task = None
        state.session_io = session_io
    else:
        assert resume.run_response is not None
        out = resume.run_response
        pending = _take_answers(state, out, resume, lease_held=False)
        session_state = copy.deepcopy(out.session_state) if out.session_state else {}
    # The continued run is the stored one: same id, messages, tools and metrics.
    plan.output = state.out = out
    ctx = plan.context = state.ctx = RunContext(
        out.run_id,
        out.session_id or "",
        out.user_id,
        session_state,
        {},
        out.metadata,
        agent.knowledge_filters,
    )
    if state.ids:
        state.ids = state.event_ids()
    # Time spent before counts towards the run's duration.
    state.started -= out.metrics.duration or 0.0
    out.status = RunStatus.running
    if plan.dependencies:
        ctx.dependencies = await resolve_dependencies(plan.dependencies, agent, ctx)
    state.messages = out.messages
    state.calls_made = len(out.tools)
    if state.lifecycle:
        state.emit(ev.RunContinuedEvent(**state.ids))
    knowledge = await _knowledge(state, first=False) if agent.knowledge is not None else ()
    await _resolve_tools(state, None, knowledge)
    if pending is not None:
        plan_continued_batch(state, pending)
        return Next.TOOLS
    return _recovery_point(state)


def _take_answers(
    state: RunState, out: RunOutput, resume: Resume, *, lease_held: bool
) -> list[ToolExecution] | None:
    """For a paused run: apply the answers and return the calls they settle. For a failed,
    cancelled or interrupted run: None. Anything else cannot be continued.

    A run stored as RUNNING was interrupted when its session's lease is held by this
    caller; without a store, it is still running in this process.
    """
    if out.agent_id is not None and out.agent_id != state.agent.id:
        raise ContinueRunError(
            f"run {out.run_id} belongs to agent {out.agent_id!r}, not to this agent "
            f"({state.agent.id!r}): continue it with the agent that ran it."
        )
    if out.status is RunStatus.paused:
        answers = resume.answers
        if answers is None and resume.run_response is not None:
            answers = resume.run_response.tools
        return apply_answers(out, answers)
    if out.status in _RESUMABLE or (out.status is RunStatus.running and lease_held):
        return None
    raise ContinueRunError(
        f"run {out.run_id} is {out.status.value}: only a paused, failed, cancelled or "
        "interrupted run can be continued."
    )


def _recovery_point(state: RunState) -> Next:
    """Where a failed, cancelled or interrupted run picks up, from its messages and tools."""
    out = state.out
    out.content = None
    messages = state.messages
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        if last.tool_calls:
            by_id = {e.tool_call_id: e for e in out.tools}
            batch = [by_id[c.id] for c in last.tool_calls if c.id in by_id]
            # The batch did not finish: run the calls that did not, keep the others.
            unfinished = [e for e in batch if e.metrics is None and not is_waiting(e)]
            state.batch, state.to_run, state.settled = batch, unfinished, []
            if state.lifecycle:
                for execution in unfinished:
                    state.emit(ev.ToolCallStartedEvent(**state.ids, tool=execution))
            return Next.TOOLS
        # It failed after its answer came (structured output, memories, storage).
        state.response = ModelResponse(
            content=last.content if isinstance(last.content, str) else "",
            reasoning=last.reasoning_content,
        )
        return take_response(state)
    return Next.MODEL


async def _load_stored(
    state: RunState, resume: Resume, session_io: SessionIO
) -> tuple[RunOutput, dict[str, Any]]:
    """Take the run's session lease and read the run as stored.

    The run is read again under the lease, so that two callers continuing the same run
    cannot both run its tools: the second finds it no longer paused. A run still RUNNING
    once the lease is held was interrupted (whoever ran it no longer holds the session).
    """
    store = session_io.store
    run_id = state.out.run_id
    session_id = resume.session_id
    if resume.run_response is not None:
        session_id = session_id or resume.run_response.session_id
    if session_id is None:
        found = await store.get_run(run_id)
        if found is None:
            raise RunNotFoundError(f"no run {run_id!r} in the session store")
        session_id = found.get("session_id")
    state.out.session_id = session_id
    session_state = await session_io.begin(
        state.out,
        default_state=state.agent.session_state,
        run_state=None,
        resume=True,
        rerun=state.plan.rerun,
    )
    data = await store.get_run(run_id)
    if data is None or data.get("session_id") != session_id:
        raise RunNotFoundError(f"no run {run_id!r} in session {session_id!r} of the store")
    out = RunOutput.from_dict(data)
    if out.status is RunStatus.running and out.session_state:
        # Interrupted: its last checkpoint holds state changes its end never wrote back.
        session_state.update(out.session_state)
    return out, session_state


# The statuses of runs that resume from their last checkpoint.
_RESUMABLE = frozenset({RunStatus.error, RunStatus.cancelled})


async def _knowledge(state: RunState, *, first: bool) -> list[Function]:
    """The agent's knowledge base: retrieval into the context before the first model
    request, and the tools to search it (`pilothouse.knowledge`)."""
    from pilothouse.knowledge.agent_tools import prepare_knowledge

    return await prepare_knowledge(state.agent, state.ctx, state.messages, state.out, first=first)


async def _resolve_tools(
    state: RunState, tool_choice: str | None, extra: Sequence[Function] = ()
) -> None:
    """Put the run's tool definitions and first tool choice on ``state.request``; ``extra``
    are tools of the run besides the agent's own (the knowledge base's search)."""
    agent = state.agent
    schema = state.plan.output_schema
    if agent.tools:
        toolset = cached_toolset(agent.tools)
        if toolset is None:
            # First use, or tools loaded at run time (MCP servers): schemas are built off
            # the event loop, and loading may wait for a server, so it can be cancelled.
            state.handle.waiting_task = state.current_task()
            try:
                toolset = await aresolve_toolset(agent.tools, state.ctx)
            finally:
                state.handle.waiting_task = None
        state.by_name = toolset.by_name
        state.request = ModelRequest(
            tools=toolset.definitions,
            tool_choice=tool_choice,
            output_schema=schema,
            stream=state.stream,
        )
    else:
        state.request = ModelRequest(output_schema=schema, stream=state.stream)
    if extra:
        state.by_name = {**state.by_name, **{f.name: f for f in extra}}
        state.request.tools = (*state.request.tools, *(f.definition for f in extra))
    limit = agent.tool_call_limit
    if limit is not None and state.calls_made >= limit:
        state.request.tool_choice = "none"

"""`Agent`: the configuration of an agent, and the methods that run it."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Unpack, cast, overload

from pilothouse.agent.options import (
    CONTINUE_OPTIONS,
    RUN_OPTIONS,
    ContinueOptions,
    PrintOptions,
    RunOptions,
)
from pilothouse.agent.validation import (
    check_limit,
    check_seconds,
    check_storable,
    check_type,
    reject_unknown,
)
from pilothouse.models.base import Model
from pilothouse.models.message import Message
from pilothouse.run.events import BaseRunEvent, RunOutputEvent
from pilothouse.run.ids import new_id
from pilothouse.run.output import RunInput, RunOutput, ToolExecution
from pilothouse.run.run_context import RunContext
from pilothouse.tools import validate_tools

if TYPE_CHECKING:
    from types import ModuleType

    from pilothouse.db.base import SessionStore
    from pilothouse.db.records import MemoryRecord, SessionRecord
    from pilothouse.run.loop import RunPlan

__all__ = ["Agent"]

_CONTINUE_OPTION_NAMES = frozenset(CONTINUE_OPTIONS)

logger = logging.getLogger("pilothouse")

_MEDIA_KINDS = ("images", "audio", "videos", "files")
_id_lock = threading.Lock()
_runtime: tuple[ModuleType, ModuleType, ModuleType, ModuleType] | None = None


def _rt() -> tuple[ModuleType, ModuleType, ModuleType, ModuleType]:
    """The run machinery (bridge, loop, registry, recent), imported on the first run.

    Deferred so that ``import pilothouse`` does not pay for asyncio and the loop.
    """
    global _runtime
    if _runtime is None:
        from pilothouse.run import bridge, loop, recent, registry

        _runtime = (bridge, loop, registry, recent)
    return _runtime


class Agent:
    """An LLM agent: a model, tools and instructions.

    An Agent is configuration only. Constructing one stores its arguments and nothing else;
    running it never writes to it, so one Agent can serve any number of concurrent runs for
    different users and sessions.

    Args:
        model: A `Model`, or a string such as ``"openai:gpt-5-mini"``,
            ``"anthropic:claude-sonnet-4-5"`` or ``"local"``. Defaults to the embedded local
            model.
        name: A readable name, shown in events and outputs.
        id: A stable id; derived from a random UUID when not given.
        description: A short description, the first line of the system message.
        instructions: A str, a list of str, or a callable returning either (it may take
            ``agent`` and/or ``run_context``). ``{name}`` placeholders are filled from the
            run's dependencies and session state.
        markdown: Ask the model to format answers in markdown.
        additional_context: Extra text appended to the system message.
        expected_output: A description of the answer wanted.
        system_message: Replaces the built system message entirely (str, callable, Message).
        tools: Functions, `Function` objects (``@tool``) and `Toolkit` objects.
        tool_call_limit: The most tool calls one run may make.
        tool_choice: ``"auto"``, ``"none"``, ``"required"`` or a tool name, also in OpenAI's
            form ``{"type": "function", "function": {"name": ...}}`` (applies to the first
            model call of a run; later calls are ``"auto"``). A tool call that repeats one the
            run already made (same tool, same arguments) is not run again: the model gets
            the earlier result and is asked for its answer.
        request_limit: The most model requests one run may make (default 50); past it the run
            ends with status ``error``. None for no limit.
        timeout: Seconds one run may take in all; past it the run ends with status
            ``error``. None (the default) for no limit besides the model's own timeouts.
        db: A session store (`pilothouse.db`: SqliteDb, PostgresDb, InMemoryDb). With one,
            every run is stored with its final status, the session state persists between
            runs, and runs of one session take turns. Without one, history and memories use
            a store local to this process (`pilothouse.db.process_store`), lost when it ends.
        checkpoint: With a db, ``"step"`` (the default) stores the run's progress after every
            model response and tool batch, so that a run that fails, is cancelled or whose
            process dies resumes from there with `continue_run` (finished tool calls are not
            run again); ``"run"`` stores it only when it ends.
        session_id, user_id: Defaults for runs that do not give their own.
        add_history_to_context: Replay the session's last ``num_history_runs`` completed
            runs (at most ``num_history_messages`` messages, when given) before the input.
        enable_user_memories: After each answer, let a memory manager (``memory_manager``,
            by default one on the agent's model) update what is remembered about the user.
        add_memories_to_context: Show the user's memories to the model (default: on when
            memories are enabled).
        session_state: The default session state; each run works on its own copy.
        add_session_state_to_context: Show the session state to the model.
        dependencies: Values, or callables resolved on every run, available to tools
            (``dependencies`` / ``run_context`` parameters) and instructions.
        add_dependencies_to_context: Show the resolved dependencies to the model.
        metadata: Recorded on every run's output.
        knowledge: A `pilothouse.knowledge.Knowledge` the agent can search.
        search_knowledge: Give the model a ``search_knowledge_base(query)`` tool (with knowledge).
        add_knowledge_to_context: Search with the input before the first model request and
            add the passages found to the input message.
        enable_agentic_knowledge_filters: Let the model filter its searches on the metadata
            keys that exist.
        knowledge_filters: Filters that restrict every knowledge search of every run (overlaid
            by a run's own), also given to tools as ``run_context.knowledge_filters``.
        input_schema: A pydantic model that dict or model input must validate against.
        output_schema: A pydantic model class: the answer is asked for as JSON in this shape
            (with the provider's structured output where it has one), validated, and given as
            ``RunOutput.content`` (an instance; ``content_type`` is the class name).
        output_retries: How often an answer that does not validate against ``output_schema``
            is sent back to the model with the errors before the run fails.
        store_events: Keep the run's events (all but the content deltas) on
            ``RunOutput.events``, and store them with the run.
        retries: How often a failing model call (connection error, timeout, 429, 5xx) is
            retried (default 3; 0 turns retries off).
        delay_between_retries: Seconds to wait before the first retry (with jitter, and at
            least what the provider asks for in Retry-After, up to 60 s).
        exponential_backoff: Double the delay after every retry (default on).
        debug_mode: Log each run's messages at DEBUG level to the terminal.
    """

    __slots__ = (
        "_id",
        "add_dependencies_to_context",
        "add_history_to_context",
        "add_knowledge_to_context",
        "add_memories_to_context",
        "add_session_state_to_context",
        "additional_context",
        "checkpoint",
        "db",
        "debug_mode",
        "delay_between_retries",
        "dependencies",
        "description",
        "enable_agentic_knowledge_filters",
        "enable_user_memories",
        "expected_output",
        "exponential_backoff",
        "input_schema",
        "instructions",
        "knowledge",
        "knowledge_filters",
        "markdown",
        "memory_manager",
        "metadata",
        "model",
        "name",
        "num_history_messages",
        "num_history_runs",
        "output_retries",
        "output_schema",
        "request_limit",
        "retries",
        "search_knowledge",
        "session_id",
        "session_state",
        "store_events",
        "system_message",
        "timeout",
        "tool_call_limit",
        "tool_choice",
        "tools",
        "user_id",
    )

    def __init__(
        self,
        *,
        model: Model | str | None = None,
        name: str | None = None,
        id: str | None = None,
        description: str | None = None,
        instructions: str | Sequence[str] | Callable[..., Any] | None = None,
        markdown: bool = False,
        additional_context: str | None = None,
        expected_output: str | None = None,
        system_message: str | Message | Callable[..., Any] | None = None,
        tools: Sequence[Any] | None = None,
        tool_call_limit: int | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        request_limit: int | None = 50,
        timeout: float | None = None,
        db: SessionStore | None = None,
        checkpoint: Literal["step", "run"] = "step",
        session_id: str | None = None,
        user_id: str | None = None,
        session_state: dict[str, Any] | None = None,
        add_session_state_to_context: bool = False,
        add_history_to_context: bool = False,
        num_history_runs: int = 3,
        num_history_messages: int | None = None,
        enable_user_memories: bool = False,
        add_memories_to_context: bool | None = None,
        memory_manager: Any = None,
        dependencies: dict[str, Any] | None = None,
        add_dependencies_to_context: bool = False,
        metadata: dict[str, Any] | None = None,
        knowledge: Any = None,
        search_knowledge: bool = True,
        add_knowledge_to_context: bool = False,
        enable_agentic_knowledge_filters: bool = False,
        knowledge_filters: dict[str, Any] | None = None,
        input_schema: type[Any] | None = None,
        output_schema: type[Any] | None = None,
        output_retries: int = 2,
        store_events: bool = False,
        retries: int = 3,
        delay_between_retries: float = 1.0,
        exponential_backoff: bool = True,
        debug_mode: bool = False,
        **unknown: Any,
    ) -> None:
        if unknown:
            reject_unknown("Agent()", unknown, _AGENT_PARAMETERS)
        if model is not None and not isinstance(model, Model):
            if not isinstance(model, str):
                raise TypeError(
                    "Agent(): model must be a Model object (e.g. OpenAIChat(id='gpt-5-mini')) or a "
                    f"string like 'openai:gpt-5-mini', not {type(model).__name__}."
                )
            from pilothouse.models.registry import model_from_string

            model = model_from_string(model)
        if tools is not None:
            validate_tools(tools)
        if type(retries) is not int or retries < 0:
            raise ValueError(f"Agent(): retries must be a whole number >= 0, not {retries!r}.")
        if type(output_retries) is not int or output_retries < 0:
            raise ValueError(
                f"Agent(): output_retries must be a whole number >= 0, not {output_retries!r}."
            )
        if output_schema is not None or input_schema is not None:
            from pilothouse.run.structured import check_output_schema

            check_output_schema(output_schema, "Agent()")
            check_output_schema(input_schema, "Agent()", name="input_schema")
        if tool_call_limit is not None and (
            type(tool_call_limit) is not int or tool_call_limit < 0
        ):
            raise ValueError(
                f"Agent(): tool_call_limit must be a whole number >= 0, not {tool_call_limit!r}."
            )
        if (
            session_state is not None
            or dependencies is not None
            or metadata is not None
            or knowledge_filters is not None
        ):
            check_type("Agent()", "session_state", session_state, dict, "a dict")
            check_type("Agent()", "dependencies", dependencies, dict, "a dict")
            check_type("Agent()", "metadata", metadata, dict, "a dict")
            check_type("Agent()", "knowledge_filters", knowledge_filters, dict, "a dict")
        if db is not None:
            from pilothouse.db.base import SessionStore

            if not isinstance(db, SessionStore):
                raise TypeError(
                    "Agent(): db must be a session store such as SqliteDb('agents.db'), "
                    f"PostgresDb(...) or InMemoryDb() from pilothouse.db, not {type(db).__name__}."
                )
        elif add_history_to_context or enable_user_memories:
            db = _process_store("Agent()")
        if type(num_history_runs) is not int or num_history_runs < 0:
            raise ValueError(
                f"Agent(): num_history_runs must be a whole number >= 0, not {num_history_runs!r}."
            )
        if num_history_messages is not None and (
            type(num_history_messages) is not int or num_history_messages < 0
        ):
            raise ValueError(
                "Agent(): num_history_messages must be a whole number >= 0 or None, "
                f"not {num_history_messages!r}."
            )
        if tool_choice is not None and not isinstance(tool_choice, str):
            tool_choice = _tool_choice_name(tool_choice)
        # Defaults need no checking, and skipping it keeps a per-request Agent cheap.
        if request_limit != 50:
            check_limit("Agent()", "request_limit", request_limit)
        if timeout is not None:
            check_seconds("Agent()", "timeout", timeout)
        if delay_between_retries != 1.0:
            check_seconds(
                "Agent()", "delay_between_retries", delay_between_retries, allow_none=False
            )
        self.model = model
        self.name = name
        self._id = id
        self.description = description
        self.instructions = instructions
        self.markdown = markdown
        self.additional_context = additional_context
        self.expected_output = expected_output
        self.system_message = system_message
        self.tools = tools
        self.tool_call_limit = tool_call_limit
        self.tool_choice = tool_choice
        self.request_limit = request_limit
        self.timeout = timeout
        self.db = db
        if checkpoint not in ("step", "run"):
            raise ValueError(f"Agent(): checkpoint must be 'step' or 'run', not {checkpoint!r}.")
        self.checkpoint = checkpoint
        self.session_id = session_id
        self.user_id = user_id
        self.add_history_to_context = add_history_to_context
        self.num_history_runs = num_history_runs
        self.num_history_messages = num_history_messages
        self.enable_user_memories = enable_user_memories
        self.add_memories_to_context = (
            enable_user_memories if add_memories_to_context is None else add_memories_to_context
        )
        self.memory_manager = memory_manager
        if enable_user_memories:
            # Imported now rather than on the event loop of the first run.
            import pilothouse.memory  # noqa: F401
        self.session_state = session_state
        self.add_session_state_to_context = add_session_state_to_context
        self.dependencies = dependencies
        self.add_dependencies_to_context = add_dependencies_to_context
        self.metadata = metadata
        self.knowledge_filters = knowledge_filters
        # Knowledge base (pilothouse.knowledge.agent_tools)
        if knowledge is not None:
            from pilothouse.knowledge.agent_tools import check_knowledge_settings

            check_knowledge_settings(
                knowledge,
                ("search_knowledge", search_knowledge),
                ("add_knowledge_to_context", add_knowledge_to_context),
                ("enable_agentic_knowledge_filters", enable_agentic_knowledge_filters),
            )
        self.knowledge = knowledge
        self.search_knowledge = search_knowledge
        self.add_knowledge_to_context = add_knowledge_to_context
        self.enable_agentic_knowledge_filters = enable_agentic_knowledge_filters
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.output_retries = output_retries
        self.store_events = bool(store_events)
        self.retries = retries
        self.delay_between_retries = delay_between_retries
        self.exponential_backoff = exponential_backoff
        self.debug_mode = debug_mode

    @property
    def id(self) -> str:
        """The agent's id: the one given, or a random one fixed on first use."""
        if self._id is None:
            with _id_lock:
                if self._id is None:
                    self._id = new_id()
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    def __repr__(self) -> str:
        model = self.model.id if isinstance(self.model, Model) else None
        return f"Agent(name={self.name!r}, model={model!r})"

    # ------------------------------------------------------------------ running

    @overload
    def run(
        self, input: Any = None, *, stream: Literal[False] = False, **options: Unpack[RunOptions]
    ) -> RunOutput: ...

    @overload
    def run(
        self, input: Any = None, *, stream: Literal[True], **options: Unpack[RunOptions]
    ) -> Iterator[RunOutputEvent]: ...

    def run(
        self, input: Any = None, *, stream: bool = False, **options: Unpack[RunOptions]
    ) -> RunOutput | Iterator[RunOutputEvent]:
        """Run the agent on ``input`` and return its `RunOutput`.

        With ``stream=True`` return an iterator of events instead: RunContent events as the
        answer arrives, plus lifecycle events (RunStarted, ToolCallStarted/Completed,
        RunCompleted, ...) with ``stream_events=True``. Works in plain scripts and inside a
        running event loop (notebooks). A failing model or tool never raises here: the output
        has status ``error`` and the message as content.

        A run that calls a tool marked ``requires_confirmation``, ``requires_user_input`` or
        ``external_execution`` pauses instead (status ``paused``); answer on its tool
        executions and call `continue_run`.

        Keyword options: stream_events, user_id, session_id, session_state, images, audio,
        videos, files (lists of `pilothouse.media` objects, sent with the input), dependencies,
        metadata, retries, knowledge_filters, output_schema, add_history_to_context,
        add_dependencies_to_context, add_session_state_to_context, debug_mode, run_id (the
        run's id instead of a random one), rerun (with run_id: execute that run again from
        the start although an earlier execution of it may already be stored, as a process
        that died mid-run leaves it; its row is reused and ends with this execution's status,
        and the session lease it held is taken over at once. For durable-execution engines,
        which guarantee that the earlier execution is gone).
        """
        bridge, loop, _, _ = _rt()
        plan = self._plan(input, stream, options, inline_sync=bridge.owns_loop())
        if stream:
            return bridge.iterate_sync(loop.run_events(plan))  # type: ignore[no-any-return]
        return bridge.run_sync(_drain(plan))  # type: ignore[no-any-return]

    @overload
    def arun(
        self, input: Any = None, *, stream: Literal[False] = False, **options: Unpack[RunOptions]
    ) -> Coroutine[Any, Any, RunOutput]: ...

    @overload
    def arun(
        self, input: Any = None, *, stream: Literal[True], **options: Unpack[RunOptions]
    ) -> AsyncRunStream: ...

    def arun(
        self, input: Any = None, *, stream: bool = False, **options: Unpack[RunOptions]
    ) -> Coroutine[Any, Any, RunOutput] | AsyncRunStream:
        """Run the agent asynchronously: ``await agent.arun(...)`` returns the `RunOutput`.

        With ``stream=True`` return an async iterator of events, usable directly
        (``async for event in agent.arun(..., stream=True)``) or after awaiting it
        (``stream = await agent.arun(..., stream=True)``). Options as for `run`.
        """
        plan = self._plan(input, stream, options, inline_sync=False)
        if stream:
            return AsyncRunStream(plan)
        return _drain(plan)

    @overload
    def continue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        stream: Literal[False] = False,
        **options: Unpack[ContinueOptions],
    ) -> RunOutput: ...

    @overload
    def continue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        stream: Literal[True],
        **options: Unpack[ContinueOptions],
    ) -> Iterator[RunOutputEvent]: ...

    def continue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        stream: bool = False,
        **options: Unpack[ContinueOptions],
    ) -> RunOutput | Iterator[RunOutputEvent]:
        """Continue a paused, failed, cancelled or interrupted run and return its `RunOutput`
        (the same run_id), or its events with ``stream=True``.

        A failed, cancelled or interrupted run (one whose process died while it ran) resumes
        from its last checkpoint: tool calls that finished are not run again, the calls of
        an unfinished batch that did not finish run now, and the failed model request is
        made again. Pass the run, or ``run_id=`` (and ``session_id=``).

        For a paused run, answer first, on its tool executions: ``confirmed=True``/``False``
        (with an optional ``confirmation_note``) for ``tools_requiring_confirmation``, a
        ``value`` on each field of ``user_input_schema`` for ``tools_requiring_user_input``,
        ``result`` for ``tools_awaiting_external_execution``. Then pass the run as
        ``run_response``, or pass ``run_id=`` with ``updated_tools=[...]`` (and
        ``session_id=``) to continue a run stored by another process. Confirmed tools run,
        rejected ones are reported to the model as rejected, external results are used as
        given, and tools that already ran are not run again.

        Keyword options: run_id, updated_tools, session_id, stream_events, dependencies,
        retries, debug_mode, request_limit, timeout, rerun (take over the session lease an
        earlier execution of this continuation held; see `run`).

        Raises:
            ContinueRunError: The run is completed, belongs to another agent, or a waiting
                tool call has no answer. Nothing changes.
            RunNotFoundError: No such run.
        """
        bridge, loop, _, _ = _rt()
        plan = self._continue_plan(run_response, stream, options, inline_sync=bridge.owns_loop())
        if stream:
            return bridge.iterate_sync(loop.run_events(plan))  # type: ignore[no-any-return]
        return bridge.run_sync(_drain(plan))  # type: ignore[no-any-return]

    @overload
    def acontinue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        stream: Literal[False] = False,
        **options: Unpack[ContinueOptions],
    ) -> Coroutine[Any, Any, RunOutput]: ...

    @overload
    def acontinue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        stream: Literal[True],
        **options: Unpack[ContinueOptions],
    ) -> AsyncRunStream: ...

    def acontinue_run(
        self,
        run_response: RunOutput | None = None,
        *,
        stream: bool = False,
        **options: Unpack[ContinueOptions],
    ) -> Coroutine[Any, Any, RunOutput] | AsyncRunStream:
        """Continue a stored run asynchronously; arguments as for `continue_run`."""
        plan = self._continue_plan(run_response, stream, options, inline_sync=False)
        if stream:
            return AsyncRunStream(plan)
        return _drain(plan)

    def cancel_run(self, run_id: str, reason: str | None = None) -> bool:
        """Cancel a run in flight: its current model or tool call is interrupted and it ends
        with status ``cancelled`` and a RunCancelled event, at its next step at the latest.
        Return True when the run will stop; False if no such run is in flight, or it has its
        answer already and is finishing."""
        return _rt()[2].cancel(run_id, reason)  # type: ignore[no-any-return]

    def get_last_run_output(self, session_id: str | None = None) -> RunOutput | None:
        """Return the latest run in ``session_id`` (default: the agent's session_id).

        With a db it is read from the store, so it works from any process; without one, or
        with no session given, it is this agent's latest run in this process.
        """
        session_id = session_id or self.session_id
        if self.db is not None and session_id is not None:
            return _rt()[0].run_sync(self.aget_last_run_output(session_id))  # type: ignore[no-any-return]
        return _rt()[3].last_run(self.id, session_id)  # type: ignore[no-any-return]

    async def aget_last_run_output(self, session_id: str | None = None) -> RunOutput | None:
        """Async `get_last_run_output`."""
        session_id = session_id or self.session_id
        if self.db is None or session_id is None:
            return _rt()[3].last_run(self.id, session_id)  # type: ignore[no-any-return]
        runs = await self.db.get_last_runs(session_id, limit=1)
        if not runs:
            return None
        from pilothouse.run.session import settle_if_interrupted

        return self._restore(await settle_if_interrupted(self.db, runs[-1]))

    # ------------------------------------------------------------------ sessions

    def _store(self) -> SessionStore:
        if self.db is None:
            raise ValueError(
                "This agent has no session store: pass db=SqliteDb('agents.db') (from "
                "pilothouse.db) to keep sessions."
            )
        return self.db

    async def aget_run_output(self, run_id: str) -> RunOutput | None:
        """Return a stored run by id, or None. A run whose process died while it ran is
        returned (and stored from now on) as failed, with a message that it was
        interrupted."""
        store = self._store()
        data = await store.get_run(run_id)
        if data is None:
            return None
        from pilothouse.run.session import settle_if_interrupted

        return self._restore(await settle_if_interrupted(store, data))

    def _restore(self, data: dict[str, Any]) -> RunOutput:
        """A stored run as a RunOutput; structured content of this agent's output_schema
        becomes an instance of it again (the store keeps only its JSON and class name)."""
        out = RunOutput.from_dict(data)
        schema = self.output_schema
        if (
            schema is not None
            and isinstance(out.content, dict)
            and out.content_type == schema.__name__
        ):
            from pydantic import ValidationError

            try:
                out.content = schema.model_validate(out.content)
            except ValidationError:
                logger.warning("run %s: stored content no longer fits %s", out.run_id, schema)
        return out

    def get_run_output(self, run_id: str) -> RunOutput | None:
        """Return a stored run by id, or None."""
        return _rt()[0].run_sync(self.aget_run_output(run_id))  # type: ignore[no-any-return]

    async def aget_session(self, session_id: str | None = None) -> SessionRecord | None:
        """Return the stored session (ids, state, run count), or None."""
        return await self._store().get_session(self._session(session_id))

    def get_session(self, session_id: str | None = None) -> SessionRecord | None:
        """Return the stored session (ids, state, run count), or None."""
        return _rt()[0].run_sync(self.aget_session(session_id))  # type: ignore[no-any-return]

    async def aget_session_state(self, session_id: str | None = None) -> dict[str, Any]:
        """Return the session's stored state ({} when it has none)."""
        state, _ = await self._store().get_session_state(self._session(session_id))
        return state

    def get_session_state(self, session_id: str | None = None) -> dict[str, Any]:
        """Return the session's stored state ({} when it has none)."""
        return _rt()[0].run_sync(self.aget_session_state(session_id))  # type: ignore[no-any-return]

    async def aget_chat_history(self, session_id: str | None = None) -> list[Message]:
        """Return the user and assistant messages of the session's completed runs, in order."""
        runs = await self._store().list_runs(self._session(session_id))
        history: list[Message] = []
        for run in runs:
            if run.get("status") != "COMPLETED":
                continue
            for data in run.get("messages") or ():
                if data.get("role") in ("user", "assistant") and not data.get("from_history"):
                    message = Message.from_dict(data)
                    if message.content is not None:
                        history.append(message)
        return history

    def get_chat_history(self, session_id: str | None = None) -> list[Message]:
        """Return the user and assistant messages of the session's completed runs, in order."""
        return _rt()[0].run_sync(self.aget_chat_history(session_id))  # type: ignore[no-any-return]

    async def aget_sessions(
        self, user_id: str | None = None, *, limit: int = 50
    ) -> list[SessionRecord]:
        """Return the sessions of ``user_id`` (default: the agent's user_id), newest first."""
        return await self._store().list_sessions(user_id=user_id or self.user_id, limit=limit)

    def get_sessions(self, user_id: str | None = None, *, limit: int = 50) -> list[SessionRecord]:
        """Return the sessions of ``user_id`` (default: the agent's user_id), newest first."""
        return _rt()[0].run_sync(self.aget_sessions(user_id, limit=limit))  # type: ignore[no-any-return]

    async def aget_user_memories(self, user_id: str | None = None) -> list[MemoryRecord]:
        """Return what is remembered about the user, oldest first."""
        user = user_id or self.user_id
        if user is None:
            raise ValueError("get_user_memories(): name the user: get_user_memories('user-1').")
        return await self._store().get_user_memories(user)

    def get_user_memories(self, user_id: str | None = None) -> list[MemoryRecord]:
        """Return what is remembered about the user, oldest first."""
        return _rt()[0].run_sync(self.aget_user_memories(user_id))  # type: ignore[no-any-return]

    def _session(self, session_id: str | None) -> str:
        session = session_id or self.session_id
        if session is None:
            raise ValueError("name the session: e.g. agent.get_session_state('session-1').")
        return session

    # ------------------------------------------------------------------ printing

    def print_response(
        self, input: Any = None, *, stream: bool = False, **options: Unpack[PrintOptions]
    ) -> None:
        """Run the agent and render the answer in the terminal with rich (live while
        streaming, tool calls shown). For development; use `run` in production."""
        from pilothouse.utils.pprint import print_response

        markdown = options.pop("markdown", self.markdown)
        show_message = options.pop("show_message", True)
        if stream:
            options.setdefault("stream_events", True)
        result = self.run(input, stream=stream, **options)  # type: ignore[call-overload]
        print_response(result, input=input if show_message else None, markdown=markdown)

    async def aprint_response(
        self, input: Any = None, *, stream: bool = False, **options: Unpack[PrintOptions]
    ) -> None:
        """Async `print_response`."""
        from pilothouse.utils.pprint import aprint_response

        markdown = options.pop("markdown", self.markdown)
        show_message = options.pop("show_message", True)
        run_options = cast("RunOptions", options)
        if stream:
            run_options.setdefault("stream_events", True)
            result: Any = self.arun(input, stream=True, **run_options)
        else:
            result = await self.arun(input, **run_options)
        await aprint_response(result, input=input if show_message else None, markdown=markdown)

    # ------------------------------------------------------------------ internals

    def _continue_plan(
        self,
        run_response: RunOutput | None,
        stream: bool,
        options: ContinueOptions,
        *,
        inline_sync: bool,
    ) -> RunPlan:
        """Check continue_run's arguments and plan the continued run."""
        from pilothouse.exceptions import RunNotFoundError

        if type(stream) is not bool:
            raise TypeError(f"continue_run(): stream must be True or False, not {stream!r}.")
        run_id = options.pop("run_id", None)
        updated_tools = options.pop("updated_tools", None)
        session_id = options.pop("session_id", None)
        unknown = {k: v for k, v in options.items() if k not in _CONTINUE_OPTION_NAMES}
        if unknown:
            reject_unknown(
                "continue_run()",
                unknown,
                ("run_response", "run_id", "updated_tools", "session_id", *CONTINUE_OPTIONS),
            )
        if run_response is not None and not isinstance(run_response, RunOutput):
            raise TypeError(
                "continue_run(): run_response must be the paused RunOutput that run() returned, "
                f"not {type(run_response).__name__}."
            )
        check_type("continue_run()", "run_id", run_id, str, "a str")
        check_type("continue_run()", "session_id", session_id, str, "a str")
        if updated_tools is not None and (
            not isinstance(updated_tools, list | tuple)
            or not all(isinstance(t, ToolExecution) for t in updated_tools)
        ):
            raise TypeError(
                "continue_run(): updated_tools must be a list of ToolExecution, e.g. the "
                "paused run's tools with confirmed/result/user input values set."
            )
        if run_response is None and run_id is None:
            raise TypeError(
                "continue_run(): pass the paused run (continue_run(response)) or its id "
                "(continue_run(run_id=..., updated_tools=[...]))."
            )
        if run_response is not None and run_id is not None and run_id != run_response.run_id:
            raise ValueError(
                f"continue_run(): run_id {run_id!r} is not the id of run_response "
                f"({run_response.run_id!r})."
            )
        if run_response is None and self.db is None:
            # Without a store only this process's own runs can be found.
            run_response = _rt()[3].find(self.id, run_id)
            if run_response is None:
                raise RunNotFoundError(
                    f"continue_run(): no paused run {run_id!r} in this process; give the agent "
                    "the db the run was stored in to continue it from another process."
                )
        answers = list(updated_tools) if updated_tools is not None else None
        if run_response is not None:
            # Check now, so that a bad call raises here and changes nothing. With a store the
            # run is checked again as stored, under its session's lease.
            _check_continuable(run_response, answers, has_store=self.db is not None)
        model = self.model if self.model is not None else _default_model()
        loop = _rt()[1]
        plan: RunPlan = loop.RunPlan(self, model, None, stream, inline_sync)
        _apply_run_options(plan, options)
        plan.resume = loop.Resume(run_response, answers, session_id)
        _debug_logging(plan)
        the_id = run_response.run_id if run_response is not None else run_id
        assert the_id is not None
        session = session_id or (run_response.session_id if run_response is not None else None)
        plan.context = RunContext(the_id, session or "")
        plan.output = run_response or RunOutput(
            run_id=the_id, agent_id=self.id, agent_name=self.name, session_id=session
        )
        return plan

    def _plan(self, input: Any, stream: bool, options: RunOptions, *, inline_sync: bool) -> RunPlan:
        """Check the run's arguments and fix everything the run needs, without touching self."""
        if type(stream) is not bool:
            raise TypeError(f"run(): stream must be True or False, not {stream!r}.")
        if self.input_schema is not None:
            input = _validate_input(self.input_schema, input)
        elif input is None:
            raise TypeError("run(): give the input to answer, e.g. agent.run('Tell me a joke').")
        model = self.model if self.model is not None else _default_model()
        run_id = options.get("run_id") if options else None
        if run_id is None:
            if options and options.get("rerun"):
                raise ValueError("run(): rerun=True needs the run_id of the run to execute again.")
            run_id = new_id()
        elif not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run(): run_id must be a non-empty str, not {run_id!r}.")
        plan: RunPlan = _rt()[1].RunPlan(self, model, input, stream, inline_sync)
        if options:
            _apply_run_options(plan, options)
        else:
            _agent_defaults(plan)
        user_id = plan.user_id or self.user_id
        session_id = plan.session_id or self.session_id or new_id()
        metadata = plan.metadata if plan.metadata is not None else self.metadata
        session_state = plan.session_state
        if self.session_state:
            # Each run works on its own copy: the agent's default must never change.
            state = copy.deepcopy(self.session_state)
            if session_state:
                state.update(session_state)
            session_state = state
        elif session_state is None:
            session_state = {}
        _debug_logging(plan)
        filters = plan.knowledge_filters
        if self.knowledge_filters:
            filters = {**self.knowledge_filters, **(filters or {})}
        plan.context = RunContext(
            run_id, session_id, user_id, session_state, {}, metadata, filters or None
        )
        plan.output = RunOutput(
            run_id=run_id,
            agent_id=self.id,
            agent_name=self.name,
            session_id=session_id,
            user_id=user_id,
            input=RunInput(input_content=input, **plan.media) if plan.media else RunInput(input),
            model=model.id,
            model_provider=model.provider,
            metadata=metadata,
        )
        return plan


def _debug_logging(plan: RunPlan) -> None:
    """Turn on the run's debug logging when the agent or the run asks for it."""
    if plan.agent.debug_mode:
        plan.debug_mode = True
    if plan.debug_mode:
        from pilothouse.utils.log import enable_debug_logging

        enable_debug_logging()


def _agent_defaults(plan: RunPlan) -> None:
    """What a run takes from its agent unless one of its options says otherwise."""
    agent = plan.agent
    plan.output_schema = agent.output_schema
    plan.dependencies = agent.dependencies
    plan.add_dependencies_to_context = agent.add_dependencies_to_context
    plan.add_session_state_to_context = agent.add_session_state_to_context
    plan.add_history_to_context = agent.add_history_to_context


def _apply_run_options(plan: RunPlan, options: Mapping[str, Any]) -> None:
    """Check the optional run() arguments and put them on the plan.

    Only the options given are looked at, each by its setter in `_RUN_OPTION_SETTERS`: a run
    passes two or three of them, and this runs for every run that passes any.
    """
    setters = _RUN_OPTION_SETTERS
    unknown = {k: v for k, v in options.items() if k not in setters}
    if unknown:
        reject_unknown("run()", unknown, ("input", "stream", *RUN_OPTIONS))
    _agent_defaults(plan)
    for name, value in options.items():
        setters[name](plan, value)


def _set_flag(name: str) -> Callable[[RunPlan, Any], None]:
    def set_flag(plan: RunPlan, value: Any) -> None:
        if type(value) is not bool:
            raise TypeError(f"run(): {name} must be True or False, not {value!r}.")
        setattr(plan, name, value)

    return set_flag


def _set_text(name: str) -> Callable[[RunPlan, Any], None]:
    def set_text(plan: RunPlan, value: Any) -> None:
        check_type("run()", name, value, str, "a str")
        setattr(plan, name, value)

    return set_text


def _set_context_flag(name: str) -> Callable[[RunPlan, Any], None]:
    """An ``add_*_to_context`` option: None keeps the agent's setting."""

    def set_context_flag(plan: RunPlan, value: Any) -> None:
        if value is not None:
            setattr(plan, name, bool(value))

    return set_context_flag


def _set_media(kind: str) -> Callable[[RunPlan, Any], None]:
    def set_media(plan: RunPlan, value: Any) -> None:
        if value is not None:
            plan.media = {**plan.media, kind: _check_media(kind, value)}

    return set_media


def _set_retries(plan: RunPlan, value: Any) -> None:
    if value is not None:  # None keeps the agent's
        if type(value) is not int or value < 0:
            raise ValueError(f"run(): retries must be a whole number >= 0, not {value!r}.")
        plan.retries = value


def _set_session_state(plan: RunPlan, value: Any) -> None:
    if value is not None:
        check_type("run()", "session_state", value, dict, "a dict")
        check_storable("run()", "session_state", value)
    plan.session_state = value


def _set_request_limit(plan: RunPlan, value: Any) -> None:
    plan.request_limit = check_limit("run()", "request_limit", value)


def _set_timeout(plan: RunPlan, value: Any) -> None:
    plan.timeout = check_seconds("run()", "timeout", value)


def _set_dependencies(plan: RunPlan, value: Any) -> None:
    if value is not None:  # merged over the agent's
        check_type("run()", "dependencies", value, dict, "a dict")
        plan.dependencies = {**(plan.agent.dependencies or {}), **value}


def _set_metadata(plan: RunPlan, value: Any) -> None:
    if value is not None:  # merged over the agent's
        check_type("run()", "metadata", value, dict, "a dict")
        plan.metadata = {**(plan.agent.metadata or {}), **value}


def _set_add_history(plan: RunPlan, value: Any) -> None:
    if value and plan.store is None:
        plan.store = _process_store("run()")
    if value is not None:
        plan.add_history_to_context = bool(value)


def _set_debug_mode(plan: RunPlan, value: Any) -> None:
    plan.debug_mode = bool(value)


def _set_knowledge_filters(plan: RunPlan, value: Any) -> None:
    check_type("run()", "knowledge_filters", value, dict, "a dict")
    plan.knowledge_filters = value


def _set_output_schema(plan: RunPlan, value: Any) -> None:
    if value is not None:  # None keeps the agent's
        from pilothouse.run.structured import check_output_schema

        check_output_schema(value, "run()")
        plan.output_schema = value


def _read_by_plan(plan: RunPlan, value: Any) -> None:
    """``run_id``: read where the run's id is chosen (`Agent._plan`)."""


_RUN_OPTION_SETTERS: dict[str, Callable[[RunPlan, Any], None]] = {
    "stream_events": _set_flag("stream_events"),
    "rerun": _set_flag("rerun"),
    "user_id": _set_text("user_id"),
    "session_id": _set_text("session_id"),
    "retries": _set_retries,
    "session_state": _set_session_state,
    "request_limit": _set_request_limit,
    "timeout": _set_timeout,
    "dependencies": _set_dependencies,
    "metadata": _set_metadata,
    "add_dependencies_to_context": _set_context_flag("add_dependencies_to_context"),
    "add_session_state_to_context": _set_context_flag("add_session_state_to_context"),
    "add_history_to_context": _set_add_history,
    "debug_mode": _set_debug_mode,
    "knowledge_filters": _set_knowledge_filters,
    "output_schema": _set_output_schema,
    "run_id": _read_by_plan,
    **{kind: _set_media(kind) for kind in _MEDIA_KINDS},
}


def _check_media(kind: str, items: Any) -> list[Any]:
    from pilothouse.media import Audio, File, Image, Video

    expected: type = {"images": Image, "audio": Audio, "videos": Video, "files": File}[kind]
    if isinstance(items, expected):
        items = [items]
    if not isinstance(items, list | tuple) or not all(isinstance(i, expected) for i in items):
        raise TypeError(
            f"run(): {kind} must be a list of pilothouse.media.{expected.__name__}, "
            f"e.g. {kind}=[{expected.__name__}(filepath='...')]."
        )
    return list(items)


_AGENT_PARAMETERS = tuple(
    name
    for name in Agent.__init__.__code__.co_varnames[
        1 : Agent.__init__.__code__.co_kwonlyargcount + 1
    ]
)


def _check_continuable(
    out: RunOutput, answers: Sequence[ToolExecution] | None, *, has_store: bool
) -> None:
    """Raise ContinueRunError unless ``out`` can be continued (with these answers)."""
    from pilothouse.exceptions import ContinueRunError
    from pilothouse.run.output import RunStatus
    from pilothouse.run.pause import check_answers

    status = out.status
    if status is RunStatus.paused:
        check_answers(out, answers)
    elif status is RunStatus.completed or (status is RunStatus.running and not has_store):
        raise ContinueRunError(
            f"run {out.run_id} is {status.value}: only a paused, failed, cancelled or "
            "interrupted run can be continued."
        )


def _tool_choice_name(choice: Any) -> str:
    """A tool choice given in OpenAI's dict form, as the tool's name."""
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or choice.get("type", "function") != "function":
        raise TypeError(
            "Agent(): tool_choice must be 'auto', 'none', 'required', a tool name, or "
            '{"type": "function", "function": {"name": "<tool name>"}}; '
            f"not {choice!r}."
        )
    return name


def _process_store(where: str) -> SessionStore:
    """The process-local session store, for history and memories without a db."""
    from pilothouse.db.inmemory import process_store

    logger.debug(
        "%s: no db given; history and memories are kept in this process only "
        "(pass db=SqliteDb('agents.db') to keep them)",
        where,
    )
    return process_store()


def _default_model() -> Model:
    from pilothouse.models.registry import default_model

    return default_model()


def _validate_input(schema: type[Any], value: Any) -> Any:
    """Validate dict or model input against the agent's input schema."""
    if isinstance(value, schema):
        return value
    if isinstance(value, dict):
        from pydantic import ValidationError

        try:
            return schema.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"run(): input does not match {schema.__name__}: {problems}") from exc
    raise TypeError(
        f"run(): this agent takes {schema.__name__} input (an instance or a dict), "
        f"not {type(value).__name__}."
    )


async def _drain(plan: RunPlan) -> RunOutput:
    async for _ in _rt()[1].run_events(plan):
        pass
    return plan.output


class AsyncRunStream:
    """The events of a streaming async run.

    Iterate it with ``async for``; awaiting it first returns the same stream, so both
    ``async for e in agent.arun(..., stream=True)`` and
    ``stream = await agent.arun(..., stream=True)`` work. ``output`` is the run's
    `RunOutput`, complete once the stream is exhausted.
    """

    __slots__ = ("_events", "_plan")

    def __init__(self, plan: RunPlan) -> None:
        self._plan = plan
        self._events: AsyncGenerator[BaseRunEvent, None] = _rt()[1].run_events(plan)

    @property
    def output(self) -> RunOutput:
        """The run's `RunOutput`: complete once the stream is exhausted."""
        return self._plan.output

    def __aiter__(self) -> AsyncRunStream:
        return self

    async def __anext__(self) -> RunOutputEvent:
        return await self._events.__anext__()  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop the run early; it is recorded as cancelled."""
        await self._events.aclose()

    def __await__(self) -> Any:
        async def itself() -> AsyncRunStream:
            return self

        return itself().__await__()

    @property
    def run_id(self) -> str:
        """The id of the run being streamed."""
        return self.output.run_id

"""Showing a run in the terminal with rich: the message, the answer, tool calls and metrics.

`print_response` and `aprint_response` back `Agent.print_response` / `Agent.aprint_response`;
`pprint_run_response` and `apprint_run_response` print a `RunOutput` or an event stream you
already have. Each takes either a finished `RunOutput` or a stream of events; a stream is shown
live while it arrives. Pass ``console`` (a `rich.console.Console`) to print somewhere other than
the terminal, e.g. into a string.

rich is imported only when something is printed, so ``import pilothouse`` does not load it.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from pilothouse.run.events import (
    RunCancelledEvent,
    RunCompletedEvent,
    RunContentEvent,
    RunErrorEvent,
    RunPausedEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from pilothouse.run.metrics import Metrics
from pilothouse.run.output import RunOutput, RunStatus, ToolExecution, _to_jsonable
from pilothouse.utils.terminal import safe_text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["apprint_run_response", "aprint_response", "pprint_run_response", "print_response"]

# Rendering the whole view (markdown included) more often than this only costs CPU: a terminal
# does not show more.
_REFRESH_PER_SECOND = 10
_ARGS_LIMIT = 200
_RESULT_LIMIT = 160


@dataclass(slots=True)
class _ToolLine:
    """One tool call as shown: the execution, and what the events told about it so far."""

    tool: ToolExecution
    result: Any = None
    running: bool = False


class _RunView:
    """What is known about one run, fed one event (or a whole `RunOutput`) at a time.

    The sync and async printers only drive iteration; everything that decides what is shown
    lives here. `render` may be called from rich's refresh thread while events still arrive,
    hence the lock.
    """

    def __init__(
        self,
        *,
        input: Any = None,
        markdown: bool,
        show_time: bool,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._input = input
        self._markdown = markdown
        self._show_time = show_time
        self._clock = clock
        self._started = clock()
        self._elapsed: float | None = None
        self._lock = threading.Lock()
        self._finished = False
        self._parts: list[str] = []
        self._data: Any = None
        self._has_data = False
        self._break_before_text = False
        self._reasoning: list[str] = []
        self._tools: list[_ToolLine] = []
        self._metrics: Metrics | None = None
        self._error: str | None = None
        self._error_type: str | None = None
        self._cancelled = False
        self._cancel_reason: str | None = None
        self._paused_tools: list[ToolExecution] | None = None

    # ------------------------------------------------------------------ input

    def add_event(self, event: object) -> None:
        """Take one event of a stream into account; events not shown are ignored."""
        with self._lock:
            if isinstance(event, RunContentEvent):
                self._add_content(event.content, event.reasoning_content)
            elif isinstance(event, ToolCallStartedEvent):
                if event.tool is not None:
                    self._line_for(event.tool).running = True
                    # Text the model writes after the call is a new thought, not a continuation.
                    self._break_before_text = True
            elif isinstance(event, ToolCallCompletedEvent):
                if event.tool is not None:
                    line = self._line_for(event.tool)
                    line.running = False
                    line.result = (
                        event.tool.result if event.tool.result is not None else event.content
                    )
            elif isinstance(event, RunCompletedEvent):
                self._complete(event.content, event.reasoning_content)
                if event.metrics is not None:
                    self._metrics = event.metrics
            elif isinstance(event, RunErrorEvent):
                self._error = event.content or "The run failed."
                self._error_type = event.error_type
            elif isinstance(event, RunCancelledEvent):
                self._cancelled = True
                self._cancel_reason = event.reason
            elif isinstance(event, RunPausedEvent):
                for tool in event.tools or ():
                    self._line_for(tool)
                self._paused_tools = list(event.tools or ())
                if event.content is not None:
                    self._complete(event.content, None)

    def add_output(self, output: RunOutput) -> None:
        """Take a finished run into account: its content, tool calls, metrics and status."""
        with self._lock:
            for tool in output.tools:
                self._line_for(tool).result = tool.result
            self._metrics = output.metrics
            if output.status is RunStatus.error:
                self._error = output.get_content_as_string() or "The run failed."
            elif output.status is RunStatus.cancelled:
                self._cancelled = True
                self._cancel_reason = output.get_content_as_string() or None
            else:
                self._complete(output.content, output.reasoning_content)
                if output.status is RunStatus.paused:
                    self._paused_tools = [t for t in output.tools if _waiting_for(t)]
            # A finished run has no clock of its own to go by: only its recorded duration counts.
            self._finished = True
            self._elapsed = output.metrics.duration

    def finish(self) -> None:
        """Mark the run as over: placeholders go away and the shown time stops."""
        with self._lock:
            if not self._finished:
                self._finished = True
                self._elapsed = self._clock() - self._started

    def _add_content(self, content: Any, reasoning: str | None) -> None:
        if reasoning:
            self._reasoning.append(reasoning)
        if content is None:
            return
        if not isinstance(content, str):
            self._data, self._has_data = content, True
            return
        if not content:
            return
        if self._break_before_text and "".join(self._parts).strip():
            self._parts.append("\n\n")
        self._break_before_text = False
        self._parts.append(content)

    def _complete(self, content: Any, reasoning: str | None) -> None:
        """Reconcile the final answer with what was streamed."""
        if reasoning and not self._reasoning:
            self._reasoning.append(reasoning)
        if content is None:
            return
        if not isinstance(content, str):
            self._data, self._has_data = content, True
            return
        streamed = "".join(self._parts)
        if not streamed.strip():
            self._parts = [content]
        elif not streamed.rstrip().endswith(content.strip()):
            # The streamed text already holds the answer, with any text written before tool
            # calls in front of it; an answer that was never streamed (a tool that ends the run
            # with its result) still has to be shown.
            self._parts.append("\n\n" + content)

    def _line_for(self, tool: ToolExecution) -> _ToolLine:
        """The line of ``tool``, added if new; events may carry copies, hence the id match."""
        for line in self._tools:
            if line.tool is tool or (
                tool.tool_call_id is not None and line.tool.tool_call_id == tool.tool_call_id
            ):
                line.tool = tool
                return line
        line = _ToolLine(tool)
        self._tools.append(line)
        return line

    # ------------------------------------------------------------------ output

    def render(self) -> RenderableType:
        """Everything known so far, as one rich renderable."""
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        with self._lock:
            parts: list[RenderableType] = []
            if self._input is not None:
                parts.append(
                    Panel(_value_renderable(self._input), title="Message", border_style="cyan")
                )
            if self._reasoning:
                parts.append(
                    Panel(
                        Text(safe_text("".join(self._reasoning)), style="dim italic"),
                        title="Reasoning",
                        border_style="magenta",
                    )
                )
            if self._tools:
                parts.append(
                    Panel(
                        Group(*(_tool_text(line, self._finished) for line in self._tools)),
                        title="Tool Calls",
                        border_style="yellow",
                    )
                )
            response = self._response_renderable()
            if response is not None:
                parts.append(Panel(response, title=self._response_title(), border_style="blue"))
            if self._paused_tools is not None:
                parts.append(
                    Panel(_paused_text(self._paused_tools), title="Paused", border_style="yellow")
                )
            if self._error is not None:
                message = self._error
                if self._error_type:
                    message = f"{self._error_type}: {message}"
                parts.append(
                    Panel(Text(safe_text(message), style="red"), title="Error", border_style="red")
                )
            if self._cancelled:
                parts.append(
                    Panel(
                        Text(
                            safe_text(self._cancel_reason or "The run was cancelled."),
                            style="yellow",
                        ),
                        title="Cancelled",
                        border_style="yellow",
                    )
                )
            metrics = _metrics_line(self._metrics)
            if metrics is not None:
                parts.append(Text(metrics, style="dim"))
            return Group(*parts)

    def _response_renderable(self) -> RenderableType | None:
        from rich.markdown import Markdown
        from rich.text import Text

        if self._has_data:
            return _value_renderable(self._data)
        # Sanitised as a whole: a control sequence may be split across streamed chunks.
        text = safe_text("".join(self._parts))
        if text.strip():
            return Markdown(text) if self._markdown else Text(text)
        if not self._finished and self._error is None and not self._cancelled:
            return Text("Thinking…", style="dim")
        return None

    def _response_title(self) -> str:
        if not self._show_time:
            return "Response"
        seconds = self._metrics.duration if self._metrics is not None else None
        if seconds is None:
            seconds = self._elapsed if self._finished else self._clock() - self._started
        return "Response" if seconds is None else f"Response ({seconds:.1f}s)"


# ---------------------------------------------------------------------- small formatters


def _value_renderable(value: Any) -> RenderableType:
    """Text as it is, anything else as pretty JSON."""
    from rich.json import JSON
    from rich.text import Text

    if isinstance(value, str):
        return Text(safe_text(value))
    # JSON escapes C0 controls itself, but not C1 ones (ensure_ascii is off to keep text legible).
    return JSON(safe_text(json.dumps(_to_jsonable(value), ensure_ascii=False, default=str)))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(value: Any) -> str:
    if not isinstance(value, str):
        value = json.dumps(_to_jsonable(value), ensure_ascii=False, default=str)
    return " ".join(value.split())


def _call_signature(tool: ToolExecution) -> str:
    args = ", ".join(f"{name}={value!r}" for name, value in (tool.tool_args or {}).items())
    return safe_text(f"{tool.tool_name}({_shorten(args, _ARGS_LIMIT)})")


def _tool_text(line: _ToolLine, finished: bool) -> RenderableType:
    from rich.text import Text

    text = Text.assemble(("• ", "dim"), (_call_signature(line.tool), "bold"))
    if line.running and not finished:
        text.append("  running…", style="dim")
    elif line.result is not None:
        style = "red" if line.tool.tool_call_error else "green"
        text.append(" → ", style="dim")
        text.append(_shorten(safe_text(_one_line(line.result)), _RESULT_LIMIT), style=style)
    return text


def _waiting_for(tool: ToolExecution) -> str | None:
    """What a paused tool call waits for, or None when it waits for nothing."""
    if tool.requires_confirmation and tool.confirmed is None:
        return "confirmation"
    if tool.requires_user_input and not tool.answered:
        return "user input"
    if tool.external_execution_required and tool.result is None:
        return "external execution"
    return None


def _paused_text(tools: list[ToolExecution]) -> RenderableType:
    from rich.text import Text

    lines = [
        f"{_call_signature(tool)} waits for {_waiting_for(tool) or 'the caller'}" for tool in tools
    ]
    return Text("\n".join(lines) or "The run is paused.", style="yellow")


def _seconds(value: float) -> str:
    return f"{value:.2f}s"


def _money(value: float) -> str:
    # Single model calls often cost fractions of a cent; two decimals would show $0.00.
    if value >= 0.01:
        return f"${value:.2f}"
    return "$" + (f"{value:.6f}".rstrip("0").rstrip(".") or "0")


def _metrics_line(metrics: Metrics | None) -> str | None:
    """The compact metrics line, or None when there is nothing worth showing."""
    if metrics is None:
        return None
    if not (
        metrics.input_tokens
        or metrics.output_tokens
        or metrics.time_to_first_token is not None
        or metrics.duration is not None
        or metrics.cost is not None
    ):
        return None
    items = [f"tokens: {metrics.input_tokens} in, {metrics.output_tokens} out"]
    if not metrics.usage_reported:
        # The provider sent no usage for a call: its tokens are missing, not zero.
        unreported = metrics.input_tokens == 0 and metrics.output_tokens == 0
        items[0] = "tokens: not reported" if unreported else items[0] + " (some not reported)"
    if metrics.time_to_first_token is not None:
        items.append(f"time to first token: {_seconds(metrics.time_to_first_token)}")
    if metrics.duration is not None:
        items.append(f"duration: {_seconds(metrics.duration)}")
    if metrics.cost is not None:
        items.append(f"cost: {_money(metrics.cost)}")
    return " · ".join(items)


# ---------------------------------------------------------------------- driving


def _console(console: Console | None) -> Console:
    if console is not None:
        return console
    from rich.console import Console

    return Console()


def _is_event_stream(value: object) -> TypeGuard[Iterable[object]]:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


@contextmanager
def _live(view: _RunView, console: Console) -> Iterator[None]:
    """Show ``view`` live while the body feeds it events; the final state stays on screen."""
    from rich.live import Live

    try:
        # Rendering happens on rich's refresh thread, so a tool that runs for a while shows up
        # at once even though no further event arrives to trigger a redraw.
        with Live(
            console=console, get_renderable=view.render, refresh_per_second=_REFRESH_PER_SECOND
        ):
            try:
                yield
            finally:
                view.finish()
    finally:
        if not console.is_terminal and not console.is_jupyter:
            # Outside a terminal rich prints the final view once but leaves its last line open.
            console.line()


def _show_output(view: _RunView, output: RunOutput, console: Console) -> None:
    view.add_output(output)
    console.print(view.render())


def _show_stream(view: _RunView, result: object, console: Console, name: str) -> None:
    if not _is_event_stream(result):
        raise TypeError(
            f"{name}() expects a RunOutput or a stream of run events, not {type(result).__name__}."
        )
    events = iter(result)
    try:
        with _live(view, console):
            for event in events:
                view.add_event(event)
    finally:
        # Stopping early (Ctrl-C) must close a run's stream so the run records it was stopped.
        close = getattr(events, "close", None)
        if callable(close):
            close()


async def _show_async_stream(
    view: _RunView, result: AsyncIterable[object], console: Console
) -> None:
    events = aiter(result)
    try:
        with _live(view, console):
            async for event in events:
                view.add_event(event)
    finally:
        aclose = getattr(events, "aclose", None)
        if callable(aclose):
            await aclose()


def _show(view: _RunView, result: object, console: Console, name: str) -> None:
    if isinstance(result, RunOutput):
        _show_output(view, result, console)
        return
    if isinstance(result, AsyncIterable) or inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            # Nobody will await it now; closing it avoids a "never awaited" warning.
            result.close()
        raise TypeError(f"{name}() got an async result; use a{name}() to print it.")
    _show_stream(view, result, console, name)


async def _ashow(view: _RunView, result: object, console: Console, name: str) -> None:
    if not isinstance(result, RunOutput | AsyncIterable) and inspect.isawaitable(result):
        result = await result
    if isinstance(result, RunOutput):
        _show_output(view, result, console)
    elif isinstance(result, AsyncIterable):
        await _show_async_stream(view, result, console)
    else:
        _show_stream(view, result, console, name)


# ---------------------------------------------------------------------- public API


def pprint_run_response(
    run_response: RunOutput | Iterable[Any],
    markdown: bool = True,
    show_time: bool = True,
    console: Console | None = None,
) -> None:
    """Print a run's answer, tool calls and metrics.

    ``run_response`` is a `RunOutput` or a stream of run events (``agent.run(...,
    stream=True)``); a stream is shown live as it arrives. String content is rendered as
    Markdown when ``markdown`` is true; structured content is shown as JSON. ``show_time``
    adds the run's duration to the title of the response.
    """
    view = _RunView(markdown=markdown, show_time=show_time)
    _show(view, run_response, _console(console), "pprint_run_response")


async def apprint_run_response(
    run_response: RunOutput | AsyncIterable[Any] | Iterable[Any],
    markdown: bool = True,
    show_time: bool = True,
    console: Console | None = None,
) -> None:
    """Async `pprint_run_response`: also takes an async event stream (``agent.arun(...,
    stream=True)``) or an awaitable that gives a `RunOutput` or a stream."""
    view = _RunView(markdown=markdown, show_time=show_time)
    await _ashow(view, run_response, _console(console), "apprint_run_response")


def print_response(
    result: RunOutput | Iterable[Any],
    *,
    input: Any = None,
    markdown: bool = False,
    console: Console | None = None,
) -> None:
    """Print the message, then the run's answer, its tool calls and a metrics line.

    ``result`` is a `RunOutput` or a stream of run events, shown live as it arrives. The
    message panel shows ``input`` (text as it is, anything else as JSON) and is left out when
    ``input`` is None. This is what `Agent.print_response` uses.
    """
    view = _RunView(input=input, markdown=markdown, show_time=False)
    _show(view, result, _console(console), "print_response")


async def aprint_response(
    result: RunOutput | AsyncIterable[Any] | Iterable[Any],
    *,
    input: Any = None,
    markdown: bool = False,
    console: Console | None = None,
) -> None:
    """Async `print_response`: also takes an async event stream or an awaitable that gives a
    `RunOutput` or a stream. This is what `Agent.aprint_response` uses."""
    view = _RunView(input=input, markdown=markdown, show_time=False)
    await _ashow(view, result, _console(console), "aprint_response")

"""Printing runs with rich: RunOutputs, sync and async event streams, and Agent.print_response."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from rich.console import Console

from pilothouse import Agent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.run.events import (
    RunCancelledEvent,
    RunCompletedEvent,
    RunContentEvent,
    RunErrorEvent,
    RunStartedEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from pilothouse.run.metrics import Metrics
from pilothouse.run.output import RunOutput, RunStatus, ToolExecution
from pilothouse.utils.pprint import (
    _RunView,
    apprint_run_response,
    aprint_response,
    pprint_run_response,
    print_response,
)


def make_console(**options: Any) -> Console:
    return Console(file=io.StringIO(), width=100, force_terminal=False, **options)


def text_of(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def weather_call(result: Any = "Sunny in Paris") -> ToolExecution:
    return ToolExecution(
        tool_name="get_weather", tool_args={"city": "Paris"}, tool_call_id="c1", result=result
    )


def finished_output(content: Any = "It is sunny.", **fields: Any) -> RunOutput:
    fields.setdefault("status", RunStatus.completed)
    fields.setdefault(
        "metrics",
        Metrics(
            input_tokens=12,
            output_tokens=5,
            total_tokens=17,
            time_to_first_token=0.25,
            duration=1.5,
        ),
    )
    return RunOutput(run_id="r1", content=content, **fields)


def weather_stream() -> Iterator[Any]:
    """The events of a streamed run that calls one tool and answers in three pieces."""
    started = ToolExecution(tool_name="get_weather", tool_args={"city": "Paris"}, tool_call_id="c1")
    yield RunStartedEvent(run_id="r1", model="test")
    yield ToolCallStartedEvent(run_id="r1", tool=started)
    done = ToolExecution(
        tool_name="get_weather",
        tool_args={"city": "Paris"},
        tool_call_id="c1",
        result="Sunny in Paris",
    )
    yield ToolCallCompletedEvent(run_id="r1", tool=done, content=done.result)
    for piece in ("It is ", "sunny ", "in Paris."):
        yield RunContentEvent(run_id="r1", content=piece)
    yield RunCompletedEvent(
        run_id="r1",
        content="It is sunny in Paris.",
        metrics=Metrics(input_tokens=30, output_tokens=7, time_to_first_token=0.1, duration=2.0),
    )


async def aiterate(events: Iterator[Any]) -> AsyncIterator[Any]:
    for event in events:
        await asyncio.sleep(0)
        yield event


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def call_weather_then_answer(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"**Forecast**: {messages[-1].content}"
    return ToolCall(name="get_weather", arguments={"city": "Paris"})


# ---------------------------------------------------------------------- RunOutput


def test_run_output_shows_content_tool_call_and_metrics() -> None:
    console = make_console()
    pprint_run_response(finished_output(tools=[weather_call()]), console=console)
    out = text_of(console)
    assert "It is sunny." in out
    assert "get_weather(city='Paris')" in out
    assert "→ Sunny in Paris" in out
    assert "Tool Calls" in out
    assert "tokens: 12 in, 5 out" in out
    assert "time to first token: 0.25s" in out
    assert "duration: 1.50s" in out


def test_show_time_puts_the_duration_in_the_response_title() -> None:
    with_time, without_time = make_console(), make_console()
    pprint_run_response(finished_output(), console=with_time)
    pprint_run_response(finished_output(), show_time=False, console=without_time)
    assert "Response (1.5s)" in text_of(with_time)
    assert "Response (" not in text_of(without_time)
    assert "Response" in text_of(without_time)


def test_cost_is_shown_when_known() -> None:
    console = make_console()
    pprint_run_response(finished_output(metrics=Metrics(cost=0.0012)), console=console)
    assert "cost: $0.0012" in text_of(console)


def test_tokens_a_provider_did_not_report_are_not_shown_as_zero() -> None:
    unreported, partly = make_console(), make_console()
    metrics = Metrics(duration=1.0, model_calls=1, usage_reported=False)
    pprint_run_response(finished_output(metrics=metrics), console=unreported)
    assert "tokens: not reported" in text_of(unreported)
    metrics = Metrics(input_tokens=9, output_tokens=2, model_calls=2, usage_reported=False)
    pprint_run_response(finished_output(metrics=metrics), console=partly)
    assert "tokens: 9 in, 2 out (some not reported)" in text_of(partly)


def test_empty_metrics_print_no_metrics_line() -> None:
    console = make_console()
    pprint_run_response(finished_output(metrics=Metrics()), console=console)
    assert "tokens:" not in text_of(console)
    assert "It is sunny." in text_of(console)


def test_markdown_is_rendered_only_when_asked() -> None:
    rendered, raw = make_console(), make_console()
    pprint_run_response(finished_output("say **bold** now"), markdown=True, console=rendered)
    pprint_run_response(finished_output("say **bold** now"), markdown=False, console=raw)
    assert "say bold now" in text_of(rendered)
    assert "**" not in text_of(rendered)
    assert "say **bold** now" in text_of(raw)


def test_structured_content_is_pretty_json() -> None:
    class Forecast(BaseModel):
        city: str
        degrees: int

    console = make_console()
    pprint_run_response(finished_output(Forecast(city="Paris", degrees=21)), console=console)
    out = text_of(console)
    assert '"city": "Paris"' in out
    assert '"degrees": 21' in out


def test_failed_run_output_shows_the_error_instead_of_a_response() -> None:
    console = make_console()
    pprint_run_response(
        finished_output("model unreachable", status=RunStatus.error), console=console
    )
    out = text_of(console)
    assert "Error" in out
    assert "model unreachable" in out
    assert "Response" not in out


def test_cancelled_run_output_shows_the_reason() -> None:
    console = make_console()
    pprint_run_response(
        finished_output("stopped by the user", status=RunStatus.cancelled), console=console
    )
    out = text_of(console)
    assert "Cancelled" in out
    assert "stopped by the user" in out


def test_paused_run_output_names_what_each_tool_call_waits_for() -> None:
    tool = ToolExecution(
        tool_name="delete_file", tool_args={"path": "/tmp/x"}, requires_confirmation=True
    )
    console = make_console()
    pprint_run_response(
        finished_output(None, status=RunStatus.paused, tools=[tool]), console=console
    )
    out = text_of(console)
    assert "Paused" in out
    assert "delete_file(path='/tmp/x') waits for confirmation" in out


def test_long_tool_results_are_cut_to_one_short_line() -> None:
    console = make_console()
    pprint_run_response(
        finished_output(tools=[weather_call("line one\nline two " + "x" * 500)]), console=console
    )
    out = text_of(console)
    assert "line one line two" in out
    assert 100 < out.count("x") < 200
    assert "x…" in out


def test_failed_tool_call_result_is_red() -> None:
    tool = weather_call("city not found")
    tool.tool_call_error = True
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system="standard")
    pprint_run_response(finished_output(tools=[tool]), console=console)
    assert "\x1b[31mcity not found" in text_of(console)


def test_tool_result_text_is_not_read_as_rich_markup() -> None:
    console = make_console()
    pprint_run_response(
        finished_output("see [bold]here[/bold]", tools=[weather_call("[red]x[/red]")]),
        markdown=False,
        console=console,
    )
    out = text_of(console)
    assert "see [bold]here[/bold]" in out
    assert "→ [red]x[/red]" in out


# ---------------------------------------------------------------------- message panel


def test_print_response_shows_the_message_then_the_response() -> None:
    console = make_console()
    print_response(finished_output(), input="What is the weather?", console=console)
    out = text_of(console)
    assert "Message" in out
    assert out.index("What is the weather?") < out.index("It is sunny.")
    assert "Response (" not in out  # the duration is on the metrics line instead
    assert "duration: 1.50s" in out


def test_structured_input_is_shown_as_json() -> None:
    console = make_console()
    print_response(
        finished_output(), input={"question": "weather", "city": "Paris"}, console=console
    )
    out = text_of(console)
    assert '"question": "weather"' in out
    assert '"city": "Paris"' in out


def test_no_message_panel_without_input() -> None:
    console = make_console()
    print_response(finished_output(), console=console)
    assert "Message" not in text_of(console)
    assert "It is sunny." in text_of(console)


def test_print_response_keeps_markdown_source_by_default() -> None:
    console = make_console()
    print_response(finished_output("**bold**"), console=console)
    assert "**bold**" in text_of(console)


# ---------------------------------------------------------------------- sync streams


def test_stream_renders_the_concatenated_content_once_at_the_end() -> None:
    console = make_console()
    print_response(weather_stream(), input="Weather?", console=console)
    out = text_of(console)
    assert out.count("It is sunny in Paris.") == 1
    assert out.count("Weather?") == 1
    assert "get_weather(city='Paris') → Sunny in Paris" in out
    assert "tokens: 30 in, 7 out" in out
    assert "time to first token: 0.10s" in out
    assert "Thinking" not in out
    assert out.endswith("\n")


def test_text_before_and_after_a_tool_call_is_kept_in_order_and_not_repeated() -> None:
    tool = weather_call(None)
    events = [
        RunContentEvent(content="Let me check."),
        ToolCallStartedEvent(tool=tool),
        ToolCallCompletedEvent(tool=tool, content="Sunny in Paris"),
        RunContentEvent(content="It is sunny."),
        RunCompletedEvent(content="It is sunny."),
    ]
    console = make_console()
    pprint_run_response(iter(events), markdown=False, console=console)
    out = text_of(console)
    assert out.count("Let me check.") == 1
    assert out.count("It is sunny.") == 1
    assert out.index("Let me check.") < out.index("It is sunny.")
    assert "→ Sunny in Paris" in out  # from the event's content: the tool carries no result


def test_final_answer_that_was_never_streamed_is_shown() -> None:
    events = [RunContentEvent(content="Calling the tool."), RunCompletedEvent(content="Sunny")]
    console = make_console()
    pprint_run_response(events, console=console)
    out = text_of(console)
    assert "Calling the tool." in out
    assert "Sunny" in out


def test_stream_markdown_is_rendered_when_asked() -> None:
    events = [RunContentEvent(content="**bo"), RunContentEvent(content="ld** text")]
    rendered, raw = make_console(), make_console()
    pprint_run_response(list(events), markdown=True, console=rendered)
    pprint_run_response(list(events), markdown=False, console=raw)
    assert "bold text" in text_of(rendered)
    assert "**" not in text_of(rendered)
    assert "**bold** text" in text_of(raw)


def test_stream_error_is_shown_in_red() -> None:
    events = [
        RunContentEvent(content="Partial answer"),
        RunErrorEvent(content="rate limit exceeded", error_type="ModelProviderError"),
    ]
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system="standard")
    print_response(events, console=console)
    out = text_of(console)
    assert "\x1b[31mModelProviderError: rate limit exceeded" in out
    assert "Partial answer" in out


def test_stream_cancellation_is_shown() -> None:
    events = [
        RunContentEvent(content="Half"),
        ToolCallStartedEvent(tool=ToolExecution(tool_name="slow_search")),
        RunCancelledEvent(reason="the user stopped it"),
    ]
    console = make_console()
    print_response(events, console=console)
    out = text_of(console)
    assert "Cancelled" in out
    assert "the user stopped it" in out
    assert "slow_search()" in out
    assert "running" not in out  # the run is over: nothing is running any more


def test_streamed_reasoning_gets_its_own_panel() -> None:
    events = [
        RunContentEvent(reasoning_content="First compare "),
        RunContentEvent(reasoning_content="the forecasts."),
        RunContentEvent(content="Take an umbrella."),
    ]
    console = make_console()
    pprint_run_response(events, console=console)
    out = text_of(console)
    assert "Reasoning" in out
    assert "First compare the forecasts." in out
    assert out.index("the forecasts.") < out.index("Take an umbrella.")


def test_a_started_tool_call_shows_as_running_until_it_completes() -> None:
    view = _RunView(markdown=False, show_time=False)
    tool = ToolExecution(tool_name="slow_search", tool_args={"q": "rust"}, tool_call_id="c9")
    view.add_event(ToolCallStartedEvent(tool=tool))
    during = make_console()
    during.print(view.render())
    assert "slow_search(q='rust')  running…" in text_of(during)
    assert "Thinking…" in text_of(during)

    tool.result = "3 hits"
    view.add_event(ToolCallCompletedEvent(tool=tool, content="3 hits"))
    view.finish()
    after = make_console()
    after.print(view.render())
    assert "slow_search(q='rust') → 3 hits" in text_of(after)
    assert "running" not in text_of(after)
    assert "Thinking" not in text_of(after)


def test_the_stream_is_closed_when_printing_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = []

    def events() -> Iterator[Any]:
        try:
            yield RunContentEvent(content="Hello")
            yield RunContentEvent(content=" world")
        finally:
            closed.append(True)

    add_event = _RunView.add_event

    def interrupted(self: _RunView, event: object) -> None:
        add_event(self, event)
        raise KeyboardInterrupt  # as if Ctrl-C hit while the view was updated

    monkeypatch.setattr(_RunView, "add_event", interrupted)
    console = make_console()
    # Holding the traceback keeps the generator alive: only an explicit close can finish it.
    with pytest.raises(KeyboardInterrupt) as raised:
        print_response(events(), console=console)
    assert closed == [True]
    assert raised.traceback
    assert "Hello" in text_of(console)  # what arrived stays on screen
    assert "world" not in text_of(console)


async def test_the_async_stream_is_closed_when_printing_stops_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = []

    async def events() -> AsyncIterator[Any]:
        try:
            yield RunContentEvent(content="Hello")
            yield RunContentEvent(content=" world")
        finally:
            closed.append(True)

    def interrupted(self: _RunView, event: object) -> None:
        raise RuntimeError("view broke")

    monkeypatch.setattr(_RunView, "add_event", interrupted)
    with pytest.raises(RuntimeError, match="view broke"):
        await aprint_response(events(), console=make_console())
    assert closed == [True]


def test_sync_printer_rejects_async_results_with_a_hint() -> None:
    async def answer() -> RunOutput:
        return finished_output()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unawaited coroutine would warn
        with pytest.raises(TypeError, match="aprint_response"):
            print_response(answer(), console=make_console())
    with pytest.raises(TypeError, match="apprint_run_response"):
        pprint_run_response(aiterate(iter([])), console=make_console())  # type: ignore[arg-type]


def test_anything_else_is_rejected() -> None:
    with pytest.raises(TypeError, match="RunOutput or a stream"):
        print_response("just text", console=make_console())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RunOutput or a stream"):
        print_response(42, console=make_console())  # type: ignore[arg-type]


# ---------------------------------------------------------------------- async


async def test_async_stream_renders_the_concatenated_content_once() -> None:
    console = make_console()
    await aprint_response(aiterate(weather_stream()), input="Weather?", console=console)
    out = text_of(console)
    assert out.count("It is sunny in Paris.") == 1
    assert "Weather?" in out
    assert "get_weather(city='Paris') → Sunny in Paris" in out
    assert "tokens: 30 in, 7 out" in out


async def test_apprint_run_response_shows_time_and_markdown() -> None:
    events = [
        RunContentEvent(content="**Sunny**"),
        RunCompletedEvent(metrics=Metrics(duration=2.0)),
    ]
    console = make_console()
    await apprint_run_response(aiterate(iter(events)), console=console)
    out = text_of(console)
    assert "Response (2.0s)" in out
    assert "Sunny" in out
    assert "**" not in out


async def test_async_printers_take_a_run_output_an_awaitable_or_a_sync_stream() -> None:
    async def answer() -> RunOutput:
        return finished_output("From a coroutine")

    from_output, from_awaitable, from_sync = make_console(), make_console(), make_console()
    await aprint_response(finished_output("From an output"), console=from_output)
    await aprint_response(answer(), console=from_awaitable)
    await apprint_run_response(iter([RunContentEvent(content="From a list")]), console=from_sync)
    assert "From an output" in text_of(from_output)
    assert "From a coroutine" in text_of(from_awaitable)
    assert "From a list" in text_of(from_sync)


async def test_async_stream_error_is_shown() -> None:
    events = [RunErrorEvent(content="tool crashed", error_type="RuntimeError")]
    console = make_console()
    await apprint_run_response(aiterate(iter(events)), console=console)
    assert "RuntimeError: tool crashed" in text_of(console)


# ---------------------------------------------------------------------- with an agent


def test_agent_print_response_shows_a_real_run(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=FunctionModel(call_weather_then_answer), tools=[get_weather])
    agent.print_response("Weather in Paris?", markdown=True)
    out = capsys.readouterr().out
    assert "Weather in Paris?" in out
    assert "get_weather(city='Paris') → Sunny in Paris" in out
    assert "Forecast: Sunny in Paris" in out
    assert "**" not in out
    assert "tokens:" in out and "duration:" in out


def test_agent_print_response_streams_a_real_run(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="**hi** there"), tools=[get_weather])
    agent.print_response("Hello", stream=True)
    out = capsys.readouterr().out
    assert out.count("**hi** there") == 1
    assert "get_weather(" in out
    assert "tokens:" in out


async def test_agent_aprint_response_streams_a_real_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = Agent(model=FunctionModel(call_weather_then_answer), tools=[get_weather])
    await agent.aprint_response("Weather?", stream=True, show_message=False)
    out = capsys.readouterr().out
    assert "Message" not in out
    assert out.count("**Forecast**: Sunny in Paris") == 1
    assert "get_weather(city='Paris') → Sunny in Paris" in out


# ---------------------------------------------------------------------- import cost


def test_importing_pilothouse_does_not_import_rich() -> None:
    code = "import sys, pilothouse, pilothouse.utils.pprint; print('rich' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "False"

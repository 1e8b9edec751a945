"""The ``pilothouse`` command: ask an agent a question, or chat with one.

pilothouse run "What is the weather in Paris?" --model openai:gpt-5-mini --stream
pilothouse chat                # the embedded model; answers stream (--no-stream: at once)
pilothouse chat --model anthropic:claude-sonnet-4-5
pilothouse mcp my_app.agents:support_agent
pilothouse serve mymodule:agent --port 8000 --workers 4
pilothouse serve --demo      # the playground on the embedded model, at http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pilothouse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "answer one question and exit"),
        ("chat", "an interactive chat; the conversation is kept for the session"),
    ):
        command = commands.add_parser(name, help=help_text)
        if name == "run":
            command.add_argument("question", help="what to ask")
        command.add_argument(
            "--model",
            default=None,
            help="'provider:model_id' (openai:…, anthropic:…, local, test); default: local",
        )
        command.add_argument("--instructions", default=None, help="the agent's instructions")
        command.add_argument(
            "--stream",
            action=argparse.BooleanOptionalAction,
            default=name == "chat",
            help="stream the answer (chat: on unless --no-stream)",
        )
        command.add_argument("--markdown", action="store_true", help="render markdown")
        command.add_argument(
            "--debug",
            action="store_true",
            help="log each run's messages, and why the model stopped, to stderr",
        )
    mcp_command = commands.add_parser(
        "mcp", help="serve an agent as an MCP server over stdin/stdout"
    )
    mcp_command.add_argument(
        "agent", help="the agent to serve: module:attribute or path/to/file.py:name"
    )
    _add_serve_command(commands)
    return parser


def _add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve agents over HTTP (needs the 'serve' extra)")
    serve.add_argument(
        "target", nargs="?", help="module:attribute or file.py:attribute (an Agent or app)"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="the playground on the embedded local model with a sample tool (loopback, no key)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds runs get to finish on SIGTERM before they are cancelled",
    )
    serve.add_argument("--log-level", default="info", help="debug, info, warning, error")


def _serve(args: argparse.Namespace) -> int:
    try:
        from pilothouse.serve.entry import serve
    except ImportError as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 2
    try:
        target = _serve_target(args)
        return serve(
            target,
            host=args.host,
            port=args.port,
            workers=args.workers,
            drain_timeout=args.drain_timeout,
            log_level=args.log_level,
        )
    except (ImportError, TypeError, ValueError, AttributeError) as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 2


def _serve_target(args: argparse.Namespace) -> str:
    """The target to serve: the one given, or the demo (checked, on loopback only)."""
    if not args.demo:
        if not args.target:
            raise ValueError("serve: give the app or agent to serve (module:attribute), or --demo")
        return str(args.target)
    if args.target:
        raise ValueError("serve: give a target or --demo, not both")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("serve: --demo has no key, so it listens on loopback only")
    from pilothouse.serve.demo import TARGET, check_demo

    check_demo()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Pilothouse playground: http://{host}:{args.port}/", flush=True)
    return TARGET


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "mcp":
        return _serve_mcp(args.agent)
    if args.command == "serve":
        return _serve(args)
    from pilothouse import Agent, RunStatus

    try:
        agent = Agent(
            model=args.model,
            instructions=args.instructions,
            markdown=args.markdown,
            debug_mode=args.debug,
        )
    except (TypeError, ValueError) as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        agent.print_response(args.question, stream=args.stream)
        last = agent.get_last_run_output()
        return 0 if last is not None and last.status == RunStatus.completed else 1
    if not args.markdown:
        from pilothouse.utils.chat import chat

        return chat(agent, stream=args.stream)
    return _chat(agent, stream=args.stream)


def _chat(agent: object, *, stream: bool) -> int:
    """The chat rendered with rich (for --markdown): each answer shown as a whole view."""
    from pilothouse import Agent
    from pilothouse.models.message import Message

    assert isinstance(agent, Agent)
    history: list[Message] = []
    print("Chatting with Pilothouse. An empty line or Ctrl-D ends the session.")
    while True:
        try:
            question = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question:
            return 0
        history.append(Message(role="user", content=question))
        agent.print_response(list(history), stream=stream, show_message=False)
        last = agent.get_last_run_output()
        if last is not None and last.status.value == "COMPLETED":
            history.append(Message(role="assistant", content=last.get_content_as_string()))
        else:
            history.pop()


def _serve_mcp(target: str) -> int:
    import asyncio

    from pilothouse.serve.mcp import load_agent, serve_stdio

    try:
        agent = load_agent(target)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_stdio([agent]))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

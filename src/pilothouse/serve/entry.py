"""``pilothouse serve module:attribute``: find the agent(s) or app, run it on uvicorn.

The target is ``module:attribute`` or ``path/to/file.py:attribute``; the attribute is an
ASGI app (e.g. one made by `create_app`), an `Agent`, or a list of agents (served by
`create_app` with the security key from ``PILOTHOUSE_SECURITY_KEY``, if set). With
``--workers N`` every worker process loads the target itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["ENV_TARGET", "app_from_env", "load_target", "serve"]

ENV_TARGET = "PILOTHOUSE_SERVE_TARGET"
ENV_SECURITY_KEY = "PILOTHOUSE_SECURITY_KEY"


def load_target(target: str) -> Any:
    """The ASGI app that ``target`` names (agents are wrapped with `create_app`)."""
    module_name, _, attribute = target.partition(":")
    if not module_name:
        raise ValueError(f"serve: give the target as module:attribute, not {target!r}")
    module = _import(module_name)
    names = [attribute] if attribute else ["app", "agent"]
    for name in names:
        if hasattr(module, name):
            return _as_app(getattr(module, name), f"{module_name}:{name}")
    raise ValueError(f"serve: {module_name} has no attribute {' or '.join(names)!r}")


def _import(module_name: str) -> Any:
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        if not path.is_file():
            raise ValueError(f"serve: no such file {module_name!r}")
        name = "pilothouse_served_" + path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"serve: cannot import {module_name!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(module_name)


def _as_app(value: Any, where: str) -> Any:
    from pilothouse.agent import Agent

    if isinstance(value, Agent) or (
        isinstance(value, list | tuple) and value and all(isinstance(a, Agent) for a in value)
    ):
        from pilothouse.serve.app import create_app

        return create_app(value, security_key=os.environ.get(ENV_SECURITY_KEY) or None)
    if callable(value):
        return value
    raise TypeError(f"serve: {where} is a {type(value).__name__}, not an app or an Agent")


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("pilothouse")
    if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def _tune_gc() -> None:
    """Garbage collection for a server: what was loaded so far (the app, its libraries) is
    frozen out of the cyclic collector's passes, and young collections run every 10,000
    allocations instead of 700. With a thousand runs in flight, full passes over every live
    object otherwise take a quarter of the CPU."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def app_from_env() -> Any:
    """The app of ``$PILOTHOUSE_SERVE_TARGET``: uvicorn's factory in each worker process."""
    _configure_logging(os.environ.get("PILOTHOUSE_LOG_LEVEL", "info"))
    app = load_target(os.environ[ENV_TARGET])
    _tune_gc()
    return app


def serve(
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    drain_timeout: float = 30.0,
    log_level: str = "info",
) -> int:
    """Serve ``target`` until stopped (SIGTERM or Ctrl-C drain the runs); the exit code."""
    import uvicorn

    if workers < 1:
        raise ValueError("serve: --workers must be at least 1")
    _configure_logging(log_level)
    app = load_target(target)
    state = getattr(getattr(app, "state", None), "pilothouse", None)
    if workers > 1 and state is not None:
        from pilothouse.serve.eventlog import is_shared

        if not is_shared(state.db):
            raise ValueError(
                "serve: several workers need a store they can share: SqliteDb or PostgresDb, "
                f"not {type(state.db).__name__}"
            )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "timeout_graceful_shutdown": drain_timeout,
    }
    if workers == 1:
        _tune_gc()
        uvicorn.run(app, **options)
    else:
        os.environ[ENV_TARGET] = target
        os.environ["PILOTHOUSE_LOG_LEVEL"] = log_level
        uvicorn.run("pilothouse.serve.entry:app_from_env", factory=True, workers=workers, **options)
    return 0

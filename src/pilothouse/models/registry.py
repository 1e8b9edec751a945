"""Model strings: ``"provider:model_id"`` → a Model object."""

from __future__ import annotations

import importlib
import logging
import threading

from pilothouse.models.base import Model

__all__ = ["PROVIDERS", "model_from_string"]

logger = logging.getLogger("pilothouse")

# provider → (module, class, extra to install). Modules are imported only when named, so an
# agent on one provider never pays for another's SDK.
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "openai": ("pilothouse.models.openai", "OpenAIChat", "openai"),
    "anthropic": ("pilothouse.models.anthropic", "Claude", "anthropic"),
    "local": ("pilothouse.models.llama_cpp", "LlamaCpp", "local"),
    "test": ("pilothouse.models.test", "TestModel", None),
}


def model_from_string(spec: str) -> Model:
    """Build a model from ``"openai:gpt-5-mini"``, ``"anthropic:claude-sonnet-4-5"``,
    ``"local"``, ``"local:/path/model.gguf"`` or ``"test"``."""
    provider, _, model_id = spec.partition(":")
    provider = provider.strip().lower()
    entry = PROVIDERS.get(provider)
    if entry is None:
        raise ValueError(
            f"Unknown model provider {provider!r} in {spec!r}. Use one of "
            + ", ".join(repr(p + ":<model id>") for p in sorted(PROVIDERS))
            + ", or pass a Model object."
        )
    module_name, class_name, extra = entry
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = f" Install it with: pip install 'pilothouse[{extra}]'" if extra else ""
        raise ValueError(
            f"The {provider!r} models are not available ({exc.name} is missing).{hint}"
        ) from exc
    cls = getattr(module, class_name)
    if provider == "local":
        model: Model = cls(model_path=model_id) if model_id else cls()
    elif provider == "test":
        model = cls()
    else:
        if not model_id:
            raise ValueError(f"{spec!r} names no model: write it as '{provider}:<model id>'.")
        model = cls(id=model_id)
    return model


_default_lock = threading.Lock()
_announced = False


def default_model() -> Model:
    """The model of an Agent created without one: the embedded local model."""
    global _announced
    try:
        model = model_from_string("local")
    except ValueError as exc:
        raise ValueError(
            "Agent() was given no model, and the embedded local model is not available: "
            f"{exc} Or pass a model, e.g. Agent(model='openai:gpt-5-mini')."
        ) from exc
    with _default_lock:
        if not _announced:
            _announced = True
            logger.info("No model given: using the embedded local model %s", model.id)
    return model

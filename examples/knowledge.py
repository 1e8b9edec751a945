"""Knowledge: documents an agent can search, with metadata filters, all offline.

Builds a small knowledge base in a SQLite file (sqlite-vec) with the embedded MiniLM embedder:
inserts a directory of Markdown files with metadata (twice: the second time stores nothing),
searches it by meaning, by keywords and both, with a dict filter and with filter expressions,
then lets an agent on the embedded model (SmolLM2, in process) answer from it, with
`knowledge_filters` choosing which documents it may see, and lists the references it used.
"""

import tempfile
from pathlib import Path

from pilothouse import Agent, RunStatus
from pilothouse.knowledge import EQ, GTE, Knowledge, SqliteVecDb
from pilothouse.models.llama_cpp import LlamaCpp

HANDBOOK = {
    "kettle.md": (
        "# Zephyr kettle\n\nThe Zephyr kettle boils a litre of water in ninety seconds.\n\n"
        "## Warranty\n\nThe Zephyr kettle has a two-year warranty.",
        {"tag": "products", "year": 2024},
    ),
    "toaster.md": (
        "# Aurora toaster\n\nThe Aurora toaster has four slots.\n\n"
        "## Warranty\n\nThe Aurora toaster has a five-year warranty.",
        {"tag": "products", "year": 2019},
    ),
    "returns.md": (
        "# Returns\n\nCustomers may return any product within thirty days of purchase.",
        {"tag": "policies", "year": 2023},
    ),
}

with tempfile.TemporaryDirectory() as work:
    root = Path(work)
    for name, (text, metadata) in HANDBOOK.items():
        folder = root / "handbook" / str(metadata["tag"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")

    kb = Knowledge(vector_db=SqliteVecDb(root / "knowledge.db"), max_results=2)

    # 1. Insert each folder with its metadata; a second insert finds nothing new.
    for tag in ("products", "policies"):
        for path in sorted((root / "handbook" / tag).glob("*.md")):
            year = HANDBOOK[path.name][1]["year"]
            kb.insert(path=path, name=path.name, metadata={"tag": tag, "year": year})
    again = kb.insert(path=root / "handbook" / "policies" / "returns.md", name="returns.md",
                      metadata={"tag": "policies", "year": 2023})  # fmt: skip
    print(f"stored {kb.vector_db.count()} chunks; inserting again changed {len(again.inserted)}")

    # 2. Search by meaning, by keywords, or both; filters are applied inside the search.
    for chunk in kb.search("How long is the warranty?"):
        print(f"  vector   {chunk.score:.3f} {chunk.name}: {chunk.content.splitlines()[-1]}")
    for chunk in kb.search("warranty toaster", search_type="keyword", max_results=1):
        print(f"  keyword  {chunk.name}: {chunk.content.splitlines()[-1]}")
    recent = kb.search("warranty", filters=EQ("tag", "products") & GTE("year", 2020))
    print("  products from 2020 on:", sorted({c.name for c in recent}))
    policies = kb.search("Can I send it back?", filters={"tag": "policies"}, search_type="hybrid")
    print("  hybrid, policies only:", [c.name for c in policies])
    assert {c.name for c in recent} == {"kettle.md"}
    assert [c.name for c in policies] == ["returns.md"]

    # 3. An agent answers from the knowledge base; knowledge_filters decide what it can see.
    agent = Agent(
        model=LlamaCpp(temperature=0, seed=7, max_tokens=60),
        knowledge=kb,
        add_knowledge_to_context=True,  # search with the question before the first request
        search_knowledge=False,  # a model this small does better without the search tool
        instructions="Answer in one sentence from the references.",
    )
    for filters in ({"tag": "products", "year": 2024}, {"tag": "products", "year": 2019}):
        run = agent.run("How long is the warranty?", knowledge_filters=filters)
        assert run.status == RunStatus.completed, run.content
        used = sorted({r.name for r in run.references or []})
        print(f"\nfilters {filters}: references {used}")
        print(f"answer: {run.content.strip()}")
    kb.vector_db.close()

"""A separate process writing runs into a SQLite store (used by test_sqlite_store)."""

from __future__ import annotations

import asyncio
import sys

from pilothouse.db import SqliteDb


async def main(db_file: str, session_id: str, tag: str, count: int) -> None:
    """Insert and finalise ``count`` runs, a few at a time, then close."""
    async with SqliteDb(db_file) as store:

        async def one(i: int) -> None:
            run = {"run_id": f"{tag}-{i}", "session_id": session_id, "status": "RUNNING"}
            await store.insert_run(run)
            await store.update_run({**run, "status": "COMPLETED", "content": tag})

        for start in range(0, count, 10):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 10, count))))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))

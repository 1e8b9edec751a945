"""Run and session ids: random UUID4 strings, made in batches."""

from __future__ import annotations

import threading
import uuid

from pilothouse.run.ids import new_id


def test_ids_are_uuid4_strings_and_unique() -> None:
    ids = [new_id() for _ in range(2000)]  # several batches
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_threads_share_the_pool_without_duplicates() -> None:
    found: list[list[str]] = [[] for _ in range(4)]

    def take(into: list[str]) -> None:
        into.extend(new_id() for _ in range(1000))

    threads = [threading.Thread(target=take, args=(box,)) for box in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for box in found for i in box]
    assert len(set(everything)) == 4000

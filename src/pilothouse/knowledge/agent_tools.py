"""What an agent's knowledge base does in a run: its search tool, retrieval before the first
model request, and the references the run records.

The run loop calls `prepare_knowledge` once per run; everything else lives here:

* ``search_knowledge=True`` gives the model ``search_knowledge_base(query)``;
* ``enable_agentic_knowledge_filters=True`` adds a ``filters`` argument to that tool, with the
  metadata keys that exist listed in its description; unknown keys are an error the model
  reads, never silently dropped;
* ``add_knowledge_to_context=True`` searches with the user's input before the first request and
  adds the chunks found to the input message;
* the run's ``knowledge_filters`` (the agent's, overlaid by the run's) restrict every search,
  the model's own filters included;
* every chunk a run used is listed on ``RunOutput.references``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pilothouse.knowledge.document import Chunk, Reference
from pilothouse.knowledge.filters import FilterInput, check_key, combine, to_filter
from pilothouse.tools.function import Function

if TYPE_CHECKING:
    from pilothouse.knowledge.knowledge import Knowledge
    from pilothouse.models.message import Message
    from pilothouse.run.output import RunOutput
    from pilothouse.run.run_context import RunContext

__all__ = [
    "KnowledgeSearch",
    "check_knowledge_settings",
    "knowledge_tools",
    "prepare_knowledge",
    "retrieve_for_context",
]

TOOL_NAME = "search_knowledge_base"


def check_knowledge_settings(knowledge: Any, *flags: tuple[str, Any]) -> None:
    """Check the Agent's knowledge arguments (``Agent(knowledge=...)`` and its flags).

    Raises:
        TypeError: ``knowledge`` is not a `Knowledge`, or a flag is not a bool.
    """
    from pilothouse.knowledge.knowledge import Knowledge

    if knowledge is not None and not isinstance(knowledge, Knowledge):
        raise TypeError(
            "Agent(): knowledge must be a pilothouse.knowledge.Knowledge, e.g. "
            f"Knowledge(vector_db=SqliteVecDb('kb.db')), not {type(knowledge).__name__}."
        )
    for name, value in flags:
        if type(value) is not bool:
            raise TypeError(f"Agent(): {name} must be True or False, not {value!r}.")


class KnowledgeSearch:
    """One run's searches of a knowledge base: restricted by the run's filters, recorded as
    references."""

    __slots__ = ("filters", "knowledge", "references")

    def __init__(
        self,
        knowledge: Knowledge,
        filters: FilterInput | None,
        references: list[Reference],
    ) -> None:
        self.knowledge = knowledge
        self.filters = to_filter(filters)
        self.references = references

    async def search(self, query: str, extra: FilterInput | None = None) -> list[Chunk]:
        """Search with the run's filters (and ``extra`` ones), recording what was found."""
        chunks = await self.knowledge.asearch(query, filters=combine(self.filters, extra))
        seen = {r.chunk_id for r in self.references}
        for chunk in chunks:
            if chunk.id not in seen:
                self.references.append(chunk.to_reference(query))
                seen.add(chunk.id)
        return chunks

    async def search_knowledge_base(self, query: str) -> str:
        """Search the knowledge base for passages relevant to the query.

        Args:
            query: What to look for, in a few words or a question.
        """
        return _format(await self.search(query), query)

    async def search_knowledge_base_with_filters(
        self, query: str, filters: dict[str, Any] | None = None
    ) -> str:
        """Search the knowledge base for passages relevant to the query.

        Args:
            query: What to look for, in a few words or a question.
            filters: Only passages whose metadata has these values, e.g. {"tag": "docs"}
                (a list of values means any of them).
        """
        extra = None
        if filters:
            if not isinstance(filters, dict):
                raise ValueError('filters must be an object such as {"tag": "docs"}')
            keys = await self.knowledge.ametadata_keys()
            unknown = sorted(k for k in filters if k not in keys)
            if unknown:
                valid = ", ".join(keys) or "none: the knowledge base has no metadata"
                raise ValueError(
                    f"unknown filter key(s) {', '.join(map(repr, unknown))}. Valid keys: {valid}."
                )
            for key in filters:
                check_key(key)
            extra = to_filter(filters)
        return _format(await self.search(query, extra), query)


def _format(chunks: Sequence[Chunk], query: str) -> str:
    if not chunks:
        return f"No passages in the knowledge base match {query!r}."
    return json.dumps(
        [{"document": c.name, "content": c.content, "metadata": c.metadata} for c in chunks],
        ensure_ascii=False,
        indent=1,
    )


def _references_of(out: RunOutput) -> list[Reference]:
    if out.references is None:
        out.references = []
    return out.references


def knowledge_tools(
    knowledge: Knowledge,
    run_context: RunContext,
    references: list[Reference],
    *,
    agentic_filters: bool,
    metadata_keys: Sequence[str] = (),
) -> list[Function]:
    """The search tool of one run: ``search_knowledge_base``, with a ``filters`` argument when
    the model may choose filters (its description lists ``metadata_keys``)."""
    search = KnowledgeSearch(knowledge, run_context.knowledge_filters, references)
    about = f" ({knowledge.name})" if knowledge.name else ""
    if not agentic_filters:
        description = (
            f"Search the knowledge base{about} for passages relevant to the query. Use it "
            "before answering questions the knowledge base may cover."
        )
        return [Function(search.search_knowledge_base, name=TOOL_NAME, description=description)]
    keys = ", ".join(metadata_keys) or "none yet"
    description = (
        f"Search the knowledge base{about} for passages relevant to the query. Optionally "
        f"narrow the search with filters on the passages' metadata; valid filter keys: {keys}."
    )
    return [
        Function(search.search_knowledge_base_with_filters, name=TOOL_NAME, description=description)
    ]


async def retrieve_for_context(
    knowledge: Knowledge, run_context: RunContext, query: str, references: list[Reference]
) -> str:
    """Search with the run's input before the first model request (classic RAG).

    Returns the text to add to the input message (empty when nothing was found); the chunks
    found are added to ``references``.
    """
    if not query.strip():
        return ""
    search = KnowledgeSearch(knowledge, run_context.knowledge_filters, references)
    chunks = await search.search(query)
    if not chunks:
        return ""
    return (
        "Use the following passages from the knowledge base if they help to answer:\n"
        f"<references>\n{_format(chunks, query)}\n</references>"
    )


def _input_message(messages: list[Message]) -> Message | None:
    for message in reversed(messages):
        if message.role == "user" and not message.from_history:
            return message
    return None


async def prepare_knowledge(
    agent: Any, run_context: RunContext, messages: list[Message], out: RunOutput, *, first: bool
) -> list[Function]:
    """Set a run up with its agent's knowledge base; return the tools to offer the model.

    On a run's first pass (``first``; not when a paused run is continued) and with
    ``add_knowledge_to_context``, the input is searched and the passages found are appended to
    the input message.
    """
    knowledge: Knowledge = agent.knowledge
    references = _references_of(out)
    if first and agent.add_knowledge_to_context:
        message = _input_message(messages)
        if message is not None:
            text = await retrieve_for_context(knowledge, run_context, message.text(), references)
            if text and isinstance(message.content, list):
                message.content = [*message.content, {"type": "text", "text": text}]
            elif text:
                message.content = f"{message.text()}\n\n{text}"
    if not agent.search_knowledge:
        return []
    keys: list[str] = []
    if agent.enable_agentic_knowledge_filters:
        keys = await knowledge.ametadata_keys()
    return knowledge_tools(
        knowledge,
        run_context,
        references,
        agentic_filters=agent.enable_agentic_knowledge_filters,
        metadata_keys=keys,
    )

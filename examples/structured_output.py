"""Structured output: `output_schema` turns the answer into a pydantic object.

Runs offline. The embedded model (SmolLM2, in process) is held to the schema by a JSON grammar,
so even a model this small answers with valid JSON; it streams that JSON as it goes. A
`FunctionModel` then shows what happens when an answer does not validate: the errors go back
to the model, which answers again (``output_retries`` times at most).
"""

from pydantic import BaseModel, Field

from pilothouse import Agent, RunStatus
from pilothouse.models.llama_cpp import LlamaCpp
from pilothouse.models.test import FunctionModel
from pilothouse.run.events import RunCompletedEvent, RunContentEvent


class City(BaseModel):
    """A city, as the model describes it."""

    name: str = Field(description="The city's name")
    country: str
    population_millions: float


agent = Agent(model=LlamaCpp(temperature=0, seed=7, max_tokens=80), output_schema=City)

# 1. The answer is a City object; content_type names its class.
run = agent.run("Describe Paris.")
assert run.status == RunStatus.completed, run.content
assert isinstance(run.content, City)
print(f"{run.content_type}: {run.content!r}")
print("as JSON:", run.get_content_as_string())

# 2. Streaming still streams: the JSON arrives piece by piece, the object at the end.
pieces = []
for event in agent.run("Describe Rome.", stream=True, stream_events=True):
    if isinstance(event, RunContentEvent) and event.content:
        pieces.append(event.content)
    elif isinstance(event, RunCompletedEvent):
        assert isinstance(event.content, City)
        print(f"streamed {len(pieces)} pieces: {''.join(pieces)}")
        print(f"completed with {event.content!r}")


# 3. A per-run schema, and a model that gets it wrong once: the errors go back to it.
class Verdict(BaseModel):
    """Whether a review is positive, with a score."""

    positive: bool
    score: int = Field(ge=1, le=5)


answers = iter(['{"positive": true, "score": "five"}', '{"positive": true, "score": 5}'])


def reviewer(messages, tools):
    if len(messages) > 1:
        print("the model was told:", messages[-1].content.splitlines()[0][:110], "...")
    return next(answers)


checker = Agent(model=FunctionModel(reviewer))
verdict = checker.run("Review: 'Loved it!'", output_schema=Verdict)
assert verdict.content == Verdict(positive=True, score=5)
print(f"after one retry: {verdict.content!r}")

"""Sampling settings of the embedded model: which ones keep its answers from degenerating.

A fixed set of 30 prompts (greetings, personal facts told in one turn and asked about in the
next, short factual questions, a question for a tool, requests for a list, open requests) runs
through ``Agent(model=LlamaCpp(...)).run(...)`` on SmolLM2-135M-Instruct with each of a few
sampling settings, the same seed for every answer, and the repetition guard off (so that the
sampler itself is judged). For each setting it prints:

- degenerate: the share of answers that repeat themselves: the same unit three times in a row
  (what the guard looks for) or the same five words three times anywhere;
- degenerate with the guard: the same, with each answer cut where the repetition guard of
  `LlamaCpp` (on by default) would have stopped it;
- at max_tokens: the share of answers that ran into the token limit;
- recall: the share of two-turn conversations whose second answer contains the fact told in
  the first ("My name is Ada." then "What is my name?" must say "Ada");
- tool: the share of tool questions answered with the tool's result, the tool called once with
  the city asked about;
- tokens/s: output tokens per second of generation, over all answers.

    .venv/bin/python benchmarks/local_sampling.py                 # all settings, ~5 min on 2 cores
    .venv/bin/python benchmarks/local_sampling.py --only today    # one setting
    .venv/bin/python benchmarks/local_sampling.py --show          # print every answer too

Needs ``pip install 'pilothouse[local]'``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.models.llama_cpp import LlamaCpp
from pilothouse.models.message import Message
from pilothouse.models.repetition import find_repetition

SEED = 7
MAX_TOKENS = 128

GREETINGS = [
    "Hi!",
    "Hello, how are you?",
    "Good morning!",
    "Hey there, what's up?",
    "Thanks for your help!",
    "Nice to meet you.",
]
# (told, asked, expected in the answer)
FACTS = [
    ("My name is Ada.", "What is my name?", "ada"),
    ("My name is Tom and I live in Lyon.", "Where do I live?", "lyon"),
    ("I have a dog called Rex.", "What is my dog's name?", "rex"),
    ("Hi, I'm Maria.", "What is my name?", "maria"),
    ("My favourite colour is green.", "What is my favourite colour?", "green"),
    ("I work as a teacher.", "What is my job?", "teacher"),
]
QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Japan?",
    "How many days are in a week?",
    "What colour is the sky on a clear day?",
    "Who wrote Romeo and Juliet?",
    "What is 2 + 2?",
    "At what temperature does water boil?",
    "What is the largest planet in the solar system?",
    "What language is spoken in Spain?",
    "How many legs does a spider have?",
]
TOOL_QUESTIONS = [
    ("What is the weather in Paris?", "Paris"),
    ("What is the weather in Tokyo?", "Tokyo"),
]
LISTS = [
    "List three fruits.",
    "Name five colours.",
    "Give me a list of four animals.",
    "What are the days of the week?",
]
OPEN = ["Tell me about yourself.", "Write a short poem about the sea."]

# Today's defaults (llama-cpp-python's sampling with temperature 0.2, no repetition penalty, no
# system message) and the candidates. repeat_last_n is the window of repeat_penalty, in tokens;
# "system" is the system message sent when the agent has no instructions.
TODAY = dict(temperature=0.2, top_p=0.95, min_p=0.05, repeat_penalty=1.0, repeat_last_n=64)
SYSTEM = "You are a helpful AI assistant."
SETTINGS: dict[str, dict[str, Any]] = {
    "today": {**TODAY, "system_prompt": None},
    "today+system": {**TODAY, "system_prompt": SYSTEM},
    "rp1.1": dict(
        temperature=0.2,
        top_p=0.9,
        min_p=0.1,
        repeat_penalty=1.1,
        repeat_last_n=64,
        system_prompt=SYSTEM,
    ),
    "greedy-rp1.2": dict(
        temperature=0.0,
        top_p=1.0,
        min_p=0.0,
        repeat_penalty=1.2,
        repeat_last_n=256,
        system_prompt=SYSTEM,
    ),
}


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
    """
    return f"Sunny and 21°C in {city}."


def degenerate(text: str) -> bool:
    """The same unit three times in a row, or the same five words three times anywhere."""
    if find_repetition(text) is not None:
        return True
    words = re.findall(r"\w+", text.lower())
    grams = Counter(tuple(words[i : i + 5]) for i in range(len(words) - 4))
    return any(count >= 3 for count in grams.values())


@dataclass
class Tally:
    """What one setting's answers came to."""

    answers: int = 0
    degenerate: int = 0
    degenerate_guarded: int = 0
    at_limit: int = 0
    recalled: int = 0
    tool_ok: int = 0
    tokens: int = 0
    seconds: float = 0.0
    shown: list[str] = field(default_factory=list)

    def add(self, prompt: str, out: Any) -> str:
        text = out.get_content_as_string() if out.status is RunStatus.completed else ""
        self.answers += 1
        last = out.messages[-1].metrics if out.messages else None
        if last is not None and last.output_tokens >= MAX_TOKENS:
            self.at_limit += 1
        if degenerate(text):
            self.degenerate += 1
        # With the guard on, generation stops where the loop starts; the text up to there is
        # the same, so cutting the recorded answer gives what the guard would have let out.
        cut = find_repetition(text)
        if degenerate(text if cut is None else text[:cut]):
            self.degenerate_guarded += 1
        for message in out.messages:
            if message.role == "assistant" and message.metrics is not None:
                self.tokens += message.metrics.output_tokens
                self.seconds += message.metrics.duration or 0.0
        self.shown.append(f"> {prompt}\n{text!r}")
        return text


def evaluate(settings: dict[str, Any]) -> Tally:
    """Run the whole prompt set with one setting."""
    model = LlamaCpp(seed=SEED, max_tokens=MAX_TOKENS, stop_repetition=False, **settings)
    model.load()  # loading is not generation: keep it out of tokens/s
    agent = Agent(model=model)
    tally = Tally()
    for prompt in GREETINGS + QUESTIONS + LISTS + OPEN:
        tally.add(prompt, agent.run(prompt))
    for told, asked, expected in FACTS:
        first = tally.add(told, agent.run(told))
        history = [
            Message(role="user", content=told),
            Message(role="assistant", content=first),
            Message(role="user", content=asked),
        ]
        if expected in tally.add(asked, agent.run(history)).lower():
            tally.recalled += 1
    with_tool = Agent(model=model, tools=[get_weather])
    for question, city in TOOL_QUESTIONS:
        out = with_tool.run(question)
        called = [t.tool_args for t in out.tools] == [{"city": city}]
        if "21" in tally.add(question, out) and called:
            tally.tool_ok += 1
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SETTINGS), action="append")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    prompts = len(GREETINGS + QUESTIONS + LISTS + OPEN + FACTS + TOOL_QUESTIONS)
    print(f"{prompts} prompts, seed {SEED}, max_tokens {MAX_TOKENS}, repetition guard off")
    print(f"system message (where 'yes'): {SYSTEM!r}\n")
    header = (
        "| setting | system | temperature | top_p | min_p | repeat_penalty | repeat_last_n "
        "| degenerate | degenerate with the guard | at max_tokens | recall | tool | tokens/s |"
    )
    rows = [header, "|---" * (header.count("|") - 1) + "|"]
    started = time.perf_counter()
    for name in args.only or list(SETTINGS):
        settings = SETTINGS[name]
        tally = evaluate(settings)
        if args.show:
            print(f"## {name}\n" + "\n".join(tally.shown) + "\n")
        n = tally.answers
        rows.append(
            f"| {name} | {'yes' if settings['system_prompt'] else 'no'} "
            f"| {settings['temperature']} | {settings['top_p']} | {settings['min_p']} "
            f"| {settings['repeat_penalty']} | {settings['repeat_last_n']} "
            f"| {tally.degenerate}/{n} ({100 * tally.degenerate / n:.0f} %) "
            f"| {tally.degenerate_guarded}/{n} ({100 * tally.degenerate_guarded / n:.0f} %) "
            f"| {tally.at_limit}/{n} ({100 * tally.at_limit / n:.0f} %) "
            f"| {tally.recalled}/{len(FACTS)} | {tally.tool_ok}/{len(TOOL_QUESTIONS)} "
            f"| {tally.tokens / max(tally.seconds, 1e-9):.0f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    print("\n".join(rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The document collection and labelled questions of ``benchmarks/knowledge.py``.

Made here, deterministically, from a fixed seed: the handbook of a fictional appliance maker,
one Markdown document per product (an overview, specifications, warranty, care and
troubleshooting sections). Every product has its own facts (wattage, weight, warranty years,
colours, factory town, an error code and its fix), written in sentences that name the product,
as real manuals do. Each question asks for one fact of one product, in words that differ from
the document's; its label is the product's document and the sentence that answers it.

Nothing is downloaded: no public data set fits the offline rule, and a generated collection
lets both frameworks be measured on exactly the same text. Standard library only, because the
other frameworks' benchmark runs in another virtualenv.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["CATEGORIES", "Document", "Question", "build"]

SEED = 20261130
ADJECTIVES = [
    "Zephyr", "Aurora", "Nimbus", "Cobalt", "Saffron", "Juniper", "Obsidian", "Halcyon",
    "Quartz", "Marlin", "Sequoia", "Tundra", "Vesper", "Willow", "Ember", "Falcon", "Granite",
    "Harbor", "Iris", "Jasper", "Kestrel", "Lumen", "Meridian", "Nova", "Onyx", "Pioneer",
    "Quill", "Raven", "Sierra", "Topaz",
]  # fmt: skip
PRODUCTS = {
    "kitchen": ["kettle", "toaster", "blender", "coffee grinder", "rice cooker"],
    "garden": ["lawn mower", "hedge trimmer", "leaf blower", "water pump", "chainsaw"],
    "office": ["shredder", "desk lamp", "label printer", "laminator", "monitor arm"],
    "bath": ["hair dryer", "electric toothbrush", "towel warmer", "shaver", "scale"],
    "outdoor": ["camping stove", "lantern", "cool box", "tent heater", "portable fan"],
}
CATEGORIES = list(PRODUCTS)
COLOURS = ["red", "slate grey", "ivory", "forest green", "navy", "copper", "matte black", "teal"]
TOWNS = ["Leeds", "Porto", "Gdansk", "Brno", "Tampere", "Ghent", "Lyon", "Turin", "Graz", "Malmo"]
FIXES = [
    "descale the heating element with white vinegar",
    "reset the thermal fuse by unplugging it for ten minutes",
    "clean the air intake filter",
    "replace the lithium battery pack",
    "tighten the blade assembly",
    "re-seat the power connector",
]
FILLER = [
    "Read every instruction before first use and keep this manual for later reference.",
    "Children should be supervised to ensure that they do not play with the appliance.",
    "Use only accessories recommended by the manufacturer; others may cause injury.",
    "Unplug the appliance before cleaning it and let it cool down completely.",
    "Do not immerse the base or the cable in water or any other liquid.",
    "Dispose of the packaging responsibly and recycle it where facilities exist.",
    "Place the appliance on a stable, level surface away from the edge of the table.",
    "Check the cable regularly for signs of damage and never use a damaged appliance.",
    "The appliance is intended for household use only, not for commercial premises.",
    "Keep the ventilation openings free of dust, fluff and other obstructions.",
    "Never leave the appliance running unattended while it is connected to the mains.",
    "If the supply cord is damaged it must be replaced by an authorised service agent.",
]


@dataclass(frozen=True)
class Document:
    """One product's manual."""

    name: str
    text: str
    metadata: dict[str, object]


@dataclass(frozen=True)
class Question:
    """A question, the document that answers it, and a phrase the answering chunk contains."""

    text: str
    document: str
    answer: str
    category: str


def _manual(rng: random.Random, product: str, category: str) -> tuple[str, dict[str, str]]:
    watts = rng.choice(range(300, 2600, 50))
    kilos = round(rng.uniform(0.4, 14.0), 1)
    years = rng.choice([1, 2, 3, 4, 5, 7, 10])
    colours = rng.sample(COLOURS, 2)
    town = rng.choice(TOWNS)
    code = rng.randint(10, 99)
    fix = rng.choice(FIXES)
    facts = {
        "watts": f"The {product} draws {watts} watts at full power",
        "weight": f"The {product} weighs {kilos} kilograms",
        "warranty": f"The {product} is covered by a {years}-year warranty",
        "colours": f"The {product} is sold in {colours[0]} and {colours[1]}",
        "town": f"Every {product} is assembled in our factory in {town}",
        "error": f"If the {product} shows error E{code}, {fix}",
    }
    filler = rng.sample(FILLER, 10)
    text = (
        f"# {product}\n\n"
        f"The {product} is part of our {category} range. {filler[0]} {filler[1]}\n\n"
        f"## Specifications\n\n{facts['watts']}. {facts['weight']}. {facts['colours']}.\n\n"
        f"{filler[2]} {filler[3]}\n\n"
        f"## Warranty and origin\n\n{facts['warranty']}, from the date of purchase. "
        f"{facts['town']}.\n\n{filler[4]} {filler[5]}\n\n"
        f"## Care\n\n{filler[6]} {filler[7]} {filler[8]} Store the {product} in a dry "
        f"place.\n\n"
        f"## Troubleshooting\n\n{facts['error']}. If the problem persists, contact support "
        f"with the serial number of your {product}. {filler[9]}\n"
    )
    return text, facts


QUESTIONS = {
    "watts": "How much electricity does the {p} use?",
    "weight": "How heavy is the {p}?",
    "warranty": "How long is the {p} guaranteed for?",
    "colours": "What colours can I buy the {p} in?",
    "town": "Where is the {p} made?",
    "error": "My {p} displays code E{code}; how do I fix it?",
}


def build(count: int = 150) -> tuple[list[Document], list[Question]]:
    """``count`` product manuals and one labelled question per manual."""
    rng = random.Random(SEED)
    names = [(a, category, kind) for a in ADJECTIVES for category, kinds in PRODUCTS.items()
             for kind in kinds]  # fmt: skip
    rng.shuffle(names)
    documents: list[Document] = []
    questions: list[Question] = []
    for adjective, category, kind in names[:count]:
        product = f"{adjective} {kind}"
        text, facts = _manual(rng, product, category)
        name = f"manuals/{category}/{product.lower().replace(' ', '-')}.md"
        year = rng.randint(2015, 2025)
        documents.append(Document(name, text, {"category": category, "year": year}))
        fact = rng.choice(list(QUESTIONS))
        code = facts["error"].split(" E", 1)[1].split(",", 1)[0]
        questions.append(
            Question(
                text=QUESTIONS[fact].format(p=product, code=code),
                document=name,
                answer=facts[fact],
                category=category,
            )
        )
    return documents, questions

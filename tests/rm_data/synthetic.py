"""A small, learnable PRM data set: a step is "yes" exactly when its code calls an API the query names.

Queries name one of `QUERY_APIS`; the "no" sibling calls one of `OTHER_APIS`, which no query names.
Written through the real exporter, so training reads exactly what `rm label` writes.
"""

from __future__ import annotations

import random
from pathlib import Path

from rm.export import TRAIN_FILE, SftExample, SftWriter
from rm.prompt import build_prm_messages

QUERY_APIS = ("get_weather", "find_movie", "list_songs", "book_hotel")
OTHER_APIS = ("track_parcel", "convert_currency", "search_news", "get_recipe")
DOCS = "\n".join(f"API {number}: {name}, POST http://localhost:8080/virtual" for number, name in enumerate(QUERY_APIS + OTHER_APIS, 1))


def candidate(api: str) -> str:
    return (
        f"##Step 1: call {api}\n```python\nimport requests\n"
        f"r = requests.post(URL, json={{'api_name': '{api}', 'tool_input': {{}}}})\nprint(r.json())\n```\n[Step 1 Finished]\n"
    )


def synthetic_pairs(count: int, seed: int = 0) -> list[SftExample]:
    """`count` sibling pairs (two examples each), one query per pair."""
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        named, other = rng.choice(QUERY_APIS), rng.choice(OTHER_APIS)
        query = f"Please use {named} to help me with request {index}."
        for api, label in ((named, "yes"), (other, "no")):
            system, user = build_prm_messages(api_docs=DOCS, query=query, previous=[], candidate=candidate(api))
            examples.append(
                SftExample(system["content"], user["content"], label, label, f"s{index}", "1" if label == "yes" else "2", f"s{index}:1|2")
            )
    return examples


def write_synthetic(folder: Path, count: int, seed: int = 0) -> Path:
    """Write the data set as `rm label` would; returns the `prm_train.jsonl` path."""
    with SftWriter(folder) as writer:
        for example in synthetic_pairs(count, seed):
            writer.add(example)
    return folder / TRAIN_FILE


def tokenizer_corpus() -> str:
    """Text for the tiny model's tokenizer, so the prompts encode in a few hundred tokens."""
    example = synthetic_pairs(1)[0]
    return "\n".join([example.system, candidate(OTHER_APIS[0]), *QUERY_APIS, *OTHER_APIS])

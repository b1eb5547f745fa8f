"""How often a constrained JSON answer finishes (and so validates) when sampled.

The same Pydantic `Person` schema, SEEDS seeds each, all submitted together to one batching
engine, in four variants: genai's own JSON grammar or ovchat's compact one (jsongrammar.py),
with the strings unbounded or bounded by max_length. A constrained answer is always valid
JSON for the schema as far as it goes; what this counts is how many end before max_tokens.

    .venv/bin/python benchmarks/json_validity.py               # default model, 30 seeds, T=1
    .venv/bin/python benchmarks/json_validity.py --temperature 0.7 --seeds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ovchat import Engine, GenerationOptions
from ovchat.library import resolve

Bounded = Annotated[str, Field(max_length=32)]


class Address(BaseModel):
    city: str
    country: str


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=150)
    role: Literal["admin", "user", "guest"]
    email: str | None = None
    address: Address
    tags: list[str] = Field(max_length=3)


class BoundedAddress(BaseModel):
    city: Bounded
    country: Bounded


class BoundedPerson(BaseModel):
    name: Bounded
    age: int = Field(ge=0, le=150)
    role: Literal["admin", "user", "guest"]
    email: Bounded | None = None
    address: BoundedAddress
    tags: list[Bounded] = Field(max_length=3)


PROMPT = [{"role": "user", "content": "Make up a person record as JSON."}]


async def variant(engine: Engine, model: type[BaseModel], genai: bool, a: Any) -> list[bool]:
    import openvino_genai as ov_genai

    schema = model.model_json_schema()

    async def one(seed: int) -> bool:
        o = GenerationOptions(
            max_new_tokens=a.max_tokens, temperature=a.temperature, seed=seed, json_schema=schema
        )
        plan = engine.plan(PROMPT, o)
        if genai:  # the same schema through genai's own converter
            cfg = ov_genai.StructuredOutputConfig(json_schema=json.dumps(schema))
            plan.config.structured_output_config = cfg
        text = "".join([c.text async for c in engine.astream(plan)])
        try:
            model.model_validate_json(text)
            return True
        except ValueError:
            return False

    return list(await asyncio.gather(*(one(1000 + s) for s in range(a.seeds))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", "--model", help="exported model dir (default: the default model)")
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--max-tokens", type=int, default=300)
    p.add_argument("--temperature", type=float, default=1.0)
    a = p.parse_args()
    model = resolve(a.model)
    engine = Engine(model, backend="batching", max_num_seqs=max(32, a.seeds))
    try:
        t = a.temperature
        print(f"{model.name}: {a.seeds} seeds, temperature {t:g}, max_tokens {a.max_tokens}")
        for schema in (Person, BoundedPerson):
            for genai in (True, False):
                ok = asyncio.run(variant(engine, schema, genai, a))
                grammar = "genai's JSON grammar" if genai else "compact grammar"
                strings = "bounded strings" if schema is BoundedPerson else "unbounded strings"
                print(f"  {grammar:21} {strings:17} valid {sum(ok)}/{len(ok)}", flush=True)
    finally:
        engine.close()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

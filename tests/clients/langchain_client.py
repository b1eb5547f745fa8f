"""Run by test_langchain.py inside its own venv (LangChain is not an ovchat dependency):
drives an ovchat server with langchain-openai's ChatOpenAI and prints one JSON report."""

from __future__ import annotations

import json
import sys
from typing import Literal

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field


class Person(BaseModel):
    """A person."""

    name: str = Field(max_length=32)
    age: int = Field(ge=0, le=150)
    role: Literal["admin", "user", "guest"]


class GetWeather(BaseModel):
    """The weather in a city."""

    city: str = Field(max_length=40)


def main() -> None:
    url, model = sys.argv[1], sys.argv[2]
    llm = ChatOpenAI(model=model, base_url=url, api_key="unused", temperature=1.0, max_tokens=200)
    out: dict = {}
    person = llm.with_structured_output(Person).invoke("Make up a person.")
    out["structured"] = person.model_dump()
    called = llm.with_structured_output(Person, method="function_calling").invoke("A person?")
    out["structured_tools"] = called.model_dump()
    tools = llm.bind_tools([GetWeather], tool_choice="any")
    ask = [HumanMessage("What is the weather in Paris?")]
    ai = tools.invoke(ask)
    out["tool_calls"] = ai.tool_calls
    chunks = list(tools.stream(ask))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    out["streamed_tool_calls"] = merged.tool_calls
    result = ToolMessage(content="21 C and sunny", tool_call_id=ai.tool_calls[0]["id"])
    answer = llm.invoke([*ask, ai, result])
    out["answer"] = answer.content
    responses = ChatOpenAI(model=model, base_url=url, api_key="unused", max_tokens=20,
                           use_responses_api=True)  # fmt: skip
    out["responses"] = responses.invoke("Hello!").text
    print(json.dumps(out))


if __name__ == "__main__":
    main()

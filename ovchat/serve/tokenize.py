"""POST /tokenize and POST /detokenize, as llama.cpp's and vLLM's servers name them.

/tokenize takes llama.cpp's `content` (with `add_special`, `with_pieces`) or vLLM's `prompt`
(with `add_special_tokens`) or `messages` (through the chat template, with
`add_generation_prompt`), and answers with both servers' fields: `tokens`, `count`,
`max_model_len`. /detokenize takes `tokens` and answers llama.cpp's `content` and vLLM's
`prompt` (the same text).
"""

from __future__ import annotations

import weakref
from typing import Any

from fastapi import FastAPI, Request
from pydantic import Field, model_validator

from ..engine import Engine
from ..engine.structured import vocab_size
from ..errors import OptionError, reason
from .errors import APIError
from .requestmodel import RequestModel
from .schema import Message
from .schema_parts import StrictModel
from .state import ServerState

MAX_DETOKENIZE = 1 << 20  # token ids in one /detokenize request
_VOCAB: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


class TokenizeRequest(RequestModel, StrictModel):
    model: str | None = None
    content: str | None = None  # llama.cpp
    prompt: str | None = None  # vLLM
    messages: list[Message] | None = Field(default=None, min_length=1)  # vLLM's chat form
    add_special: bool | None = None  # llama.cpp
    add_special_tokens: bool | None = None  # vLLM
    add_generation_prompt: bool = True
    with_pieces: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> TokenizeRequest:
        given = [k for k in ("content", "prompt", "messages") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'content', 'prompt' or 'messages'")
        return self


class DetokenizeRequest(RequestModel, StrictModel):
    model: str | None = None
    tokens: list[int] = Field(max_length=MAX_DETOKENIZE)


def vocabulary_size(eng: Engine) -> int:
    """The model's token ids are 0 to this, exclusive (read once per engine)."""
    if eng not in _VOCAB:
        _VOCAB[eng] = vocab_size(eng.path, eng.tokenizer)
    return _VOCAB[eng]


def tokenize(eng: Engine, body: TokenizeRequest) -> list[int]:
    try:
        if body.messages is not None:
            msgs = [m.as_dict() for m in body.messages]
            if body.add_generation_prompt:
                return eng.encode(eng.render(msgs))
            # without the answer's opening: the template applied as it is, no generation prompt
            text = str(eng.tokenizer.apply_chat_template(msgs, False))
            return eng.encode(text)
        text = body.content if body.content is not None else body.prompt or ""
        special = body.add_special if body.add_special is not None else body.add_special_tokens
        if not special:
            return eng.encode(text) if text else []
        ids = eng.tokenizer.encode(text, add_special_tokens=True).input_ids.data
        return [int(i) for i in ids[0]]
    except OptionError as e:
        field = "messages" if body.messages is not None else "content"
        raise APIError(400, str(e), param=field, code="invalid_value") from e
    except (RuntimeError, TypeError) as e:
        raise APIError(
            400, f"the text cannot be tokenized: {reason(e)}", code="invalid_value"
        ) from e


def add_tokenize_routes(app: FastAPI, server: ServerState) -> None:
    @app.post("/tokenize")
    async def tokenize_route(body: TokenizeRequest, request: Request) -> dict[str, Any]:
        _, eng = await server.chat_engine(body.model, request)
        ids = tokenize(eng, body)
        tokens: list[Any] = ids
        if body.with_pieces:
            tokens = [{"id": i, "piece": eng.tokenizer.decode([i], False)} for i in ids]
        return {"tokens": tokens, "count": len(ids), "max_model_len": eng.info.context_length}

    @app.post("/detokenize")
    async def detokenize_route(body: DetokenizeRequest, request: Request) -> dict[str, Any]:
        _, eng = await server.chat_engine(body.model, request)
        size = vocabulary_size(eng)
        for i, t in enumerate(body.tokens):
            if not 0 <= t < size:
                raise APIError(
                    400,
                    f"token id {t} is outside the vocabulary (0 to {size - 1})",
                    param=f"tokens[{i}]",
                    code="invalid_value",
                )
        try:
            text = eng.tokenizer.decode(body.tokens, False) if body.tokens else ""
        except (RuntimeError, TypeError) as e:
            raise APIError(400, "these tokens cannot be decoded", param="tokens") from e
        return {"content": text, "prompt": text}

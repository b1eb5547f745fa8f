"""The base of every request body the server accepts: `RequestModel`.

Every string anywhere in a request (field values, nested messages, list items, even the
keys and the values of fields ovchat ignores) is checked here, once, before any field is
validated: text that is not valid Unicode (a lone surrogate such as "\\ud800", which JSON's
escapes can spell but UTF-8 cannot carry) is a 400 naming the field, never an error deep in
the tokenizer, a stop-string binding or a JSON encoder.

A new request shape (a new endpoint's body) must derive from RequestModel; a test
(tests/test_serve_hostile.py) checks that every route's body does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

from .errors import APIError

MAX_PATH_ITEMS = 64  # a field path longer than this is cut in the error's `param`


def bad_string_at(data: Any) -> str | None:
    """The path ("messages[0].content") of the first string that is not valid Unicode, or
    None. Iterative: a body nested as deep as the JSON parser allows cannot recurse here."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _valid(value):
                return _spell(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and not _valid(key):
                    return _spell(path)
                stack.append((item, (*path, str(key))))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
    return None


def _valid(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _spell(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path[:MAX_PATH_ITEMS]:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


class RequestModel(BaseModel):
    """Base of every request body: strings checked once, here (see the module's doc)."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = bad_string_at(data)
        if where is not None:
            # Not a ValueError: pydantic would file it under the model, not the field.
            raise APIError(
                400,
                f"'{where or 'body'}' is not valid Unicode text (it holds a lone surrogate, "
                "e.g. the JSON escape \\ud800 without its pair)",
                param=where or None,
                code="invalid_value",
            )
        return data

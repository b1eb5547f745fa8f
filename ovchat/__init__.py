"""ovchat: local chat models on OpenVINO.

    import ovchat
    model = ovchat.load()                         # the default model, prepared once
    print(model.generate("Why is the sky blue?"))
    chat = model.chat(system="You are concise.")  # keeps the history, fits the context window
    print(chat.send("Hi!"))

    ovchat.export("model.gguf", "out")            # any HF id, HF dir or .gguf → int4 IR
    engine = ovchat.Engine(ovchat.resolve(None))  # the default model, prepared once
    for chunk in engine.stream([{"role": "user", "content": "Hi"}]):
        print(chunk.text, end="")

Importing ovchat loads neither torch nor the export stack: only `export()` (and preparing
the default model, eval, bench's torch engines) needs the `export` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .conversation import Conversation
from .convert.recipe import Recipe
from .embedmodel import EmbeddingModel
from .engine import Chunk, Completion, Engine, EngineStatus, Plan
from .errors import (
    ContextLengthError,
    DeviceError,
    EngineError,
    ExportError,
    InvalidModelError,
    MissingExtraError,
    ModelNotFoundError,
    OptionError,
    OvchatError,
    UnsupportedModelError,
)
from .library import ensure_default_model, resolve
from .model import Model, generate, load
from .modeldir import ModelInfo
from .options import GenerationOptions
from .rerankmodel import RerankModel
from .speechmodel import SpeechModel

if TYPE_CHECKING:
    from .convert.export import export

__all__ = [
    "Chunk",
    "Completion",
    "ContextLengthError",
    "Conversation",
    "DeviceError",
    "EmbeddingModel",
    "Engine",
    "EngineError",
    "EngineStatus",
    "ExportError",
    "GenerationOptions",
    "InvalidModelError",
    "MissingExtraError",
    "Model",
    "ModelInfo",
    "ModelNotFoundError",
    "OptionError",
    "OvchatError",
    "Plan",
    "Recipe",
    "RerankModel",
    "SpeechModel",
    "UnsupportedModelError",
    "ensure_default_model",
    "export",
    "generate",
    "load",
    "resolve",
]


def __getattr__(name: str) -> Any:
    if name == "export":  # its module is light, but keep the export path out of import time
        from .convert.export import export

        return export
    raise AttributeError(name)

"""ovchat: local chat models on OpenVINO.

import ovchat
model = ovchat.load()                         # the default model, prepared once
print(model.generate("Why is the sky blue?"))
chat = model.chat(system="You are concise.")  # keeps the history, fits the context window
print(chat.send("Hi!"))

ovchat.export("model.gguf", "out")          # any HF id, HF dir or .gguf → int4 IR
engine = ovchat.Engine(ovchat.resolve(None))  # the default model, prepared once
for chunk in engine.stream([{"role": "user", "content": "Hi"}]):
    print(chunk.text, end="")
"""

from .api import Conversation, Model, load
from .engine import Chunk, Completion, Engine, GenerationOptions, ModelInfo
from .errors import (
    ContextLengthError,
    DeviceError,
    ExportError,
    InvalidModelError,
    ModelNotFoundError,
    OptionError,
    OvchatError,
    UnsupportedModelError,
)
from .export import Recipe, export
from .generate import generate
from .models import ensure_default_model, resolve

__all__ = [
    "Chunk",
    "Completion",
    "ContextLengthError",
    "Conversation",
    "DeviceError",
    "Engine",
    "ExportError",
    "GenerationOptions",
    "InvalidModelError",
    "Model",
    "ModelInfo",
    "ModelNotFoundError",
    "OptionError",
    "OvchatError",
    "Recipe",
    "UnsupportedModelError",
    "ensure_default_model",
    "export",
    "generate",
    "load",
    "resolve",
]

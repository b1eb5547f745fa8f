"""ovchat: local chat models on OpenVINO.

import ovchat
ovchat.export("model.gguf", "out")          # any HF id, HF dir or .gguf → int4 IR
engine = ovchat.Engine(ovchat.resolve(None))  # the default model, prepared once
for chunk in engine.stream([{"role": "user", "content": "Hi"}]):
    print(chunk.text, end="")
"""

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
    "DeviceError",
    "Engine",
    "ExportError",
    "GenerationOptions",
    "InvalidModelError",
    "ModelInfo",
    "ModelNotFoundError",
    "OptionError",
    "OvchatError",
    "Recipe",
    "UnsupportedModelError",
    "ensure_default_model",
    "export",
    "generate",
    "resolve",
]

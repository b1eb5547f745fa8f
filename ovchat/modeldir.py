"""What an exported model dir is: its required files, its manifest, and what it can do.

Read by the engine, the library, eval and bench; nothing here loads OpenVINO.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .convert.vision import LANGUAGE_IR, VISION_IR, is_vision_dir
from .errors import InvalidModelError
from .paths import models_dir

MANIFEST = "ovchat.json"
EVAL_FILE = "ovchat-eval.json"  # the fidelity `ovchat eval` measured for this export
DEFAULT_CONTEXT_LENGTH = 2048  # when the config names none
REQUIRED_FILES = (
    "openvino_model.xml",
    "openvino_model.bin",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
)
# An embedding model or a reranker only encodes: it needs no detokenizer.
EMBEDDING_FILES = REQUIRED_FILES[:3]
# A speech model (Whisper) is an encoder and a decoder, with a tokenizer pair.
SPEECH_FILES = (
    "openvino_encoder_model.xml",
    "openvino_decoder_model.xml",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
)
# A vision-language model: a language model and a vision encoder (convert/vision.py).
VISION_FILES = (LANGUAGE_IR, VISION_IR, *REQUIRED_FILES[2:])
# Whisper's decoder window is max_target_positions (448 tokens)
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length",
                "max_target_positions")  # fmt: skip
EMBEDDING_TASKS = ("feature-extraction", "sentence-similarity")
RERANK_TASKS = ("text-classification",)  # cross-encoders: one relevance logit per pair
SPEECH_TASKS = ("automatic-speech-recognition",)
# An IR made by another tool: a chat model's output is named "logits".
_LOGITS = re.compile(r'names="(?:[^"]*,)?logits(?:,[^"]*)?"')

Kind = Literal["chat", "embedding", "rerank", "speech", "vision"]
FILES: dict[str, tuple[str, ...]] = {
    "chat": REQUIRED_FILES,
    "embedding": EMBEDDING_FILES,
    "rerank": EMBEDDING_FILES,
    "speech": SPEECH_FILES,
    "vision": VISION_FILES,
}
KIND_TASK = {"chat": "text-generation-with-past", "embedding": "feature-extraction",
             "rerank": "text-classification", "speech": "automatic-speech-recognition",
             "vision": "image-text-to-text"}  # fmt: skip
KIND_ARTICLE = {"chat": "a", "embedding": "an", "rerank": "a", "speech": "a", "vision": "a"}
# What each kind does, and where to use it (said when a model is used as another kind).
KIND_USE = {
    "chat": "ovchat chat or generate, Model.generate, the chat and completion endpoints",
    "embedding": "ovchat embed, Model.embed, /v1/embeddings",
    "rerank": "ovchat rerank, Model.rerank, /v1/rerank",
    "speech": "ovchat transcribe, Model.transcribe, /v1/audio/transcriptions",
    "vision": "ovchat chat or generate --image, Model.generate(images=...), the chat endpoints",
}


@dataclass(frozen=True)
class ModelInfo:
    """An exported model dir as ovchat sees it: name, context window and manifest."""

    path: Path
    name: str
    context_length: int
    manifest: dict[str, Any] = field(default_factory=dict)
    kind: Kind = "chat"


def is_model_dir(path: Path) -> bool:
    """Looks like an export (the check proper is `check_model_dir`)."""
    return path.is_dir() and (
        any((path / f).is_file() for f in (REQUIRED_FILES[0], SPEECH_FILES[0], MANIFEST))
        or is_vision_dir(path)
    )


def check_model_dir(path: str | Path) -> Path:
    """Raise InvalidModelError unless `path` holds an exported model; return it resolved."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InvalidModelError(f"model directory {p} does not exist", "check the path")
    if not p.is_dir():
        raise InvalidModelError(
            f"{p} is not a directory", "export it first: ovchat export MODEL OUTPUT_DIR"
        )
    needed = FILES[model_kind(p)]
    missing = [f for f in needed if not (p / f).is_file()]
    if missing:
        raise InvalidModelError(
            f"{p} is not an exported model (missing {', '.join(missing)})",
            reexport_hint(p) if (p / MANIFEST).is_file() else "export a model into it first",
        )
    return p.resolve()


def task_kind(task: str) -> Kind:
    """The kind of model an optimum task exports."""
    for kind, tasks in (("embedding", EMBEDDING_TASKS), ("rerank", RERANK_TASKS),
                        ("speech", SPEECH_TASKS)):  # fmt: skip
        if task.startswith(tasks):
            return kind  # type: ignore[return-value]
    return "chat"


def model_kind(path: Path, manifest: dict[str, Any] | None = None) -> Kind:
    """ "vision" for a vision-language export (it has a vision encoder), "embedding",
    "rerank", "speech" or "chat": from the manifest's task, or for an export made by another
    tool, from its files, its config's architecture and its IR's outputs."""
    if is_vision_dir(path):
        return "vision"
    if manifest is None:
        manifest = {}
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((path / MANIFEST).read_text())
    task = ((manifest.get("recipe") or {}).get("asked") or {}).get("task")
    if isinstance(task, str):
        return task_kind(task)
    if (path / SPEECH_FILES[0]).is_file():
        return "speech"
    with contextlib.suppress(OSError, ValueError, TypeError):
        archs = json.loads((path / "config.json").read_text()).get("architectures") or []
        if any(str(a).endswith("ForSequenceClassification") for a in archs):
            return "rerank"
    try:
        xml = (path / REQUIRED_FILES[0]).read_text(errors="replace")
    except OSError:
        return "chat"
    return "chat" if _LOGITS.search(xml) else "embedding"


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (a config, a manifest)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidModelError(f"{path} is corrupted: {e}", reexport_hint(path.parent)) from e
    if not isinstance(data, dict):
        raise InvalidModelError(f"{path} is not a JSON object", reexport_hint(path.parent))
    return data


def reexport_hint(path: Path) -> str:
    """A command that rebuilds `path`: from its manifest's source when it has one."""
    if models_dir() in path.parents:
        return (
            "remove it from the library (ovchat rm NAME; see ovchat list) and pull it again; "
            "the default model is prepared again on its next use"
        )
    source = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        source = json.loads((path / MANIFEST).read_text())["source"]["model"]
    return f"re-export it: ovchat export {source or 'MODEL'} {path} --force"


def read_manifest(path: Path) -> dict[str, Any]:
    """The export's manifest ({} for an export made by another tool)."""
    return read_json_object(path / MANIFEST) if (path / MANIFEST).is_file() else {}


def read_model_info(path: Path) -> ModelInfo:
    manifest = read_manifest(path)
    ctx = DEFAULT_CONTEXT_LENGTH
    if (path / "config.json").is_file():
        cfg = read_json_object(path / "config.json")
        if isinstance(cfg.get("text_config"), dict):  # a vision-language model's text part
            cfg = {**cfg["text_config"], **cfg}
        for key in CONTEXT_KEYS:
            value = cfg.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                if value < 2:
                    raise InvalidModelError(
                        f"{path / 'config.json'} gives a context of {value} tokens",
                        reexport_hint(path),
                    )
                ctx = value
                break
    name = str(manifest.get("name") or path.name)
    if _is_local_path(name):  # exported from a local dir: its name, never a path on this machine
        name = Path(name.replace("\\", "/")).name or path.name
    kind = model_kind(path, manifest)
    return ModelInfo(path=path, name=name, context_length=ctx, manifest=manifest, kind=kind)


def dir_size_mb(path: Path, patterns: tuple[str, ...] = ("openvino_model.*",)) -> float:
    """Size on disk of the files matching `patterns` (the weights, by default)."""
    total = sum(f.stat().st_size for pat in patterns for f in path.glob(pat) if f.is_file())
    return total / 2**20


def _is_local_path(name: str) -> bool:
    """A name that is a path on this machine (a local source), not a hub id like org/model."""
    return os.path.isabs(name) or name.startswith(("./", "../", "~", ".\\")) or "\\" in name


def require_kind(info: ModelInfo, kind: Kind, what: str, how: str) -> None:
    """Refuse an export of another kind than `kind`: `what` names what was wanted ("a
    reranker"), `how` how to get one."""
    if info.kind != kind:
        raise InvalidModelError(
            f"{info.name} is {KIND_ARTICLE[info.kind]} {info.kind} model, not {what}",
            f"{how} (use this one with {KIND_USE[info.kind]})",
            param="model",
        )

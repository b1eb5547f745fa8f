"""What an exported model dir is: its required files, its manifest, and what it can do.

Read by the engine, the library, eval and bench; nothing here loads OpenVINO.
"""

from __future__ import annotations

import contextlib
import json
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
# An embedding model only encodes: it needs no detokenizer.
EMBEDDING_FILES = REQUIRED_FILES[:3]
# A vision-language model: a language model and a vision encoder (convert/vision.py).
VISION_FILES = (LANGUAGE_IR, VISION_IR, *REQUIRED_FILES[2:])
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length")
EMBEDDING_TASKS = ("feature-extraction", "sentence-similarity")
# An IR made by another tool: a chat model's output is named "logits".
_LOGITS = re.compile(r'names="(?:[^"]*,)?logits(?:,[^"]*)?"')

Kind = Literal["chat", "embedding", "vision"]


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
        (path / REQUIRED_FILES[0]).is_file() or (path / MANIFEST).is_file() or is_vision_dir(path)
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
    kind = model_kind(p)
    needed = {"embedding": EMBEDDING_FILES, "vision": VISION_FILES}.get(kind, REQUIRED_FILES)
    missing = [f for f in needed if not (p / f).is_file()]
    if missing:
        raise InvalidModelError(
            f"{p} is not an exported model (missing {', '.join(missing)})",
            reexport_hint(p) if (p / MANIFEST).is_file() else "export a model into it first",
        )
    return p.resolve()


def model_kind(path: Path, manifest: dict[str, Any] | None = None) -> Kind:
    """ "vision" for a vision-language export (it has a vision encoder), "embedding" for a
    text-embedding export, else "chat": from the manifest's task, or for an export made by
    another tool, from the IR's output names."""
    if is_vision_dir(path):
        return "vision"
    if manifest is None:
        manifest = {}
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((path / MANIFEST).read_text())
    task = ((manifest.get("recipe") or {}).get("asked") or {}).get("task")
    if isinstance(task, str):
        return "embedding" if task.startswith(EMBEDDING_TASKS) else "chat"
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
    kind = model_kind(path, manifest)
    return ModelInfo(path=path, name=name, context_length=ctx, manifest=manifest, kind=kind)


def dir_size_mb(path: Path, patterns: tuple[str, ...] = ("openvino_model.*",)) -> float:
    """Size on disk of the files matching `patterns` (the weights, by default)."""
    total = sum(f.stat().st_size for pat in patterns for f in path.glob(pat) if f.is_file())
    return total / 2**20

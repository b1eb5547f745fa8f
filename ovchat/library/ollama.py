"""`ollama:NAME[:TAG]`: a model already in the local Ollama store, imported without a download.

Ollama keeps each model as a manifest, `manifests/HOST/NAMESPACE/NAME/TAG` (JSON: `layers`,
each with `mediaType` and `digest`), whose layer of media type
`application/vnd.ollama.image.model` is the GGUF file itself, stored as
`blobs/sha256-HEX`. The store is `$OLLAMA_MODELS`, else `~/.ollama/models`. ovchat reads the
manifest, checks the blob, and names it by a link `NAME-TAG.gguf` in its own cache (the blob
has no suffix), which `pull` then takes as any .gguf file. Written by hand: no library reads
Ollama's store.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import InvalidModelError, ModelNotFoundError
from ..paths import home

PREFIX = "ollama:"
ENV_STORE = "OLLAMA_MODELS"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_ollama(source: str) -> bool:
    return source.startswith(PREFIX)


def store() -> Path:
    env = os.environ.get(ENV_STORE)
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def _parse(spec: str) -> tuple[list[str], str]:
    """`ollama:[HOST/][NAMESPACE/]NAME[:TAG]` → manifest path parts, tag."""
    body = spec[len(PREFIX) :]
    name, _, tag = body.partition(":")
    tag = tag or DEFAULT_TAG
    parts = name.split("/")
    if len(parts) == 1:
        parts = [DEFAULT_HOST, DEFAULT_NAMESPACE, *parts]
    elif len(parts) == 2:
        parts = [DEFAULT_HOST, *parts]
    if len(parts) != 3 or not all(_PART.match(p) for p in [*parts, tag]):
        raise ModelNotFoundError(
            f"{spec!r} is not an Ollama model name", "write it as ollama:NAME or ollama:NAME:TAG"
        )
    return parts, tag


def _available(root: Path) -> list[str]:
    """NAME:TAG of the models in the store (library namespace shortened, as Ollama lists)."""
    out = []
    for m in sorted((root / "manifests").glob("*/*/*/*")):
        host, ns, name, tag = m.parts[-4:]
        short = name if (host, ns) == (DEFAULT_HOST, DEFAULT_NAMESPACE) else f"{host}/{ns}/{name}"
        out.append(f"{short}:{tag}")
    return out


def resolve(spec: str) -> tuple[Path, str]:
    """The GGUF blob of `ollama:NAME[:TAG]` (through a `.gguf` link in ovchat's cache) and the
    library name it is pulled as."""
    parts, tag = _parse(spec)
    root = store()
    if not (root / "manifests").is_dir():
        raise ModelNotFoundError(
            f"no Ollama model store at {root}",
            f"set {ENV_STORE} to Ollama's models directory, or `ollama pull {parts[-1]}` first",
        )
    manifest = root / "manifests" / Path(*parts) / tag
    if not manifest.is_file():
        have = _available(root)
        raise ModelNotFoundError(
            f"{parts[-1]}:{tag} is not in the Ollama store at {root}",
            ("it has: " + ", ".join(have[:8])) if have else f"`ollama pull {parts[-1]}:{tag}`",
        )
    try:
        layers = json.loads(manifest.read_text())["layers"]
        layer = next(x for x in layers if x.get("mediaType") == MODEL_MEDIA_TYPE)
        digest = str(layer["digest"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as e:
        raise InvalidModelError(
            f"the Ollama manifest {manifest} names no model file",
            f"`ollama pull {parts[-1]}:{tag}` again",
        ) from e
    algo, _, hexdigest = digest.partition(":")
    blob = root / "blobs" / f"{algo}-{hexdigest}"
    if not blob.is_file():
        raise ModelNotFoundError(
            f"the Ollama store lacks the model file of {parts[-1]}:{tag} ({blob.name})",
            f"`ollama pull {parts[-1]}:{tag}` again",
        )
    size = layer.get("size")
    if isinstance(size, int) and blob.stat().st_size != size:
        raise InvalidModelError(
            f"the Ollama model file of {parts[-1]}:{tag} is incomplete "
            f"({blob.stat().st_size} of {size} bytes)",
            f"`ollama pull {parts[-1]}:{tag}` again",
        )
    links = home() / "ollama"
    links.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9._-]+", "-", parts[-1].lower()).strip("-._")[:64] or "model"
    link = links / f"{name}-{tag}.gguf"
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(blob.resolve())
    os.replace(tmp, link)
    return link, name

"""Getting a model into the library: `pull` (an export into the library, named), and the
pull on first use of a recipe tag whose source is known (`smollm2:int8`).

The export itself is convert/export.py's (atomic: it appears whole or not at all); the
entry is written only after it, so a name never points at a half-made export.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..convert.recipe import GGUF_FORMAT, Recipe
from ..errors import OptionError, require
from ..modeldir import read_manifest
from ..paths import file_lock, models_dir
from ..progress import Progress, printer
from .default import KNOWN, KnownModel
from .held import holders
from .names import (
    AUTO_TAG,
    RECIPE_TAGS,
    Ref,
    check_tag_recipe,
    name_from_source,
    parse_ref,
    recipe_for_tag,
)
from .ollama import PREFIX, is_ollama
from .ollama import resolve as resolve_ollama
from .store import (
    Entry,
    delete_export,
    entries_root,
    list_entries,
    locked,
    new_dir,
    now,
    read_entry,
    sharing,
    storage,
    write_entry,
)


def pull(
    source: str,
    name: str | None = None,
    recipe: Recipe | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    generation: dict[str, Any] | None = None,
    embedding: dict[str, Any] | None = None,
    exporter: Exporter | None = None,
    tag: str | None = None,
) -> Entry:
    """Export `source` (HF id, HF dir, .gguf, `ollama:NAME[:TAG]`, or a model the library
    knows, `smollm2`) into the library as `name` (`name:tag`; default: named after the
    source, tagged `tag`, else with its weight format).

    `force` replaces an existing `name:tag`. `exporter` exports instead of `export()` (with
    its arguments; `--recipe auto` measures recipes). The other arguments are `export()`'s.
    """
    recipe = (recipe or Recipe()).validate()
    display = None
    known = KNOWN.get(source) if not Path(source).expanduser().exists() else None
    if known is not None:  # its own source, name and sampling settings
        source, name, display = known.source(), name or known.name, known.display
        generation = known.generation if generation is None else generation
    if is_ollama(source):  # a model in the local Ollama store: its GGUF blob, no download
        display = source.removeprefix(PREFIX)
        link, ollama_name = resolve_ollama(source)
        source, name = str(link), name or ollama_name
    ref = parse_ref(name, param="name") if name else Ref(name_from_source(source))
    tag = ref.tag or tag or recipe.weight_format
    if exporter is None:
        check_tag_recipe(tag, recipe)
    local = Path(source).expanduser()
    return _pull(
        source,
        ref.with_tag(tag),
        recipe,
        force=force,
        say=progress or printer("ovchat pull"),
        generation=generation,
        embedding=embedding,
        # the manifest's name: a hub id as is, a local dir or file by its own name
        display=display or (local.stem if local.exists() else source),
        known=known if known is not None and tag != AUTO_TAG else None,
        exporter=exporter,
    )


Exporter = Callable[..., Path]  # export()'s arguments → the export's path


def _pull(
    source: str,
    ref: Ref,
    recipe: Recipe,
    *,
    force: bool,
    say: Progress,
    generation: dict[str, Any] | None = None,
    embedding: dict[str, Any] | None = None,
    display: str | None = None,
    known: KnownModel | None = None,
    first_use: bool = False,
    exporter: Exporter | None = None,
) -> Entry:
    from ..convert.export import export
    from ..convert.gguf_genai import runtime_only

    # (a .gguf file: export() says which route it needs and why)
    if not runtime_only(source, recipe) and not source.lower().endswith(".gguf"):
        require("optimum.intel", "export", f"pulling {ref}")

    assert ref.tag is not None
    with storage("pull a model"):
        models_dir().mkdir(parents=True, exist_ok=True)
        lock = entries_root() / ref.name / f".{ref.tag}.pull.lock"
        # One pull of a name:tag at a time, across processes (two first uses at once).
        with file_lock(lock):
            old = read_entry(ref.name, ref.tag)
            if old is not None and not force:
                if known is not None and known.complete(old.dir):
                    return old  # another process pulled it while we waited
                if first_use and old.dir.is_dir():
                    return old  # the same, for a model pulled from its recorded source
                if known is None:
                    raise OptionError(
                        f"{ref} is already in the library", "replace it with force=True",
                        param="force",
                    )  # fmt: skip
            kept = known.dirs.get(ref.tag) if known else None
            out = models_dir() / kept if kept else new_dir(ref.name, ref.tag)
            if not (known is not None and known.complete(out) and not force):
                (exporter or export)(source, out, recipe, force=True, name=display,
                                     progress=say, generation=generation, embedding=embedding,
                                     why=known.why if known else None)  # fmt: skip
            with locked():
                others = [e for e in list_entries(ref.name) if e.tag != ref.tag]
                default = (
                    ref.tag == known.default_tag
                    if known
                    else (old.default if old else not any(e.default for e in others))
                )
                entry = Entry(ref.name, ref.tag, out, now(), default=default)
                write_entry(entry)
            if old is not None and old.dir.resolve() != out.resolve():
                _drop_if_unused(old)
    return entry


def adopt_known() -> None:
    """Name the exports that earlier versions prepared without a library (the default
    model's dir): they are used as they are, never prepared again."""
    for known in KNOWN.values():
        for tag, dirname in known.dirs.items():
            path = models_dir() / dirname
            if read_entry(known.name, tag) is None and known.complete(path):
                with locked():
                    default = tag == known.default_tag
                    write_entry(Entry(known.name, tag, path, now(), default=default))


def _drop_if_unused(old: Entry) -> None:
    """An export a replaced entry pointed at: deleted unless another name or a server has it."""
    if old.managed and not sharing(old) and not holders(old.dir):
        with contextlib.suppress(Exception):
            delete_export(old.dir)


def pull_on_first_use(ref: Ref, progress: Progress | None = None) -> Entry | None:
    """`ref` is not in the library: pull it if it is a recipe tag of a model whose source is
    known (the default model, or another tag pulled from a source that is still there).
    None if it cannot be."""
    known = KNOWN.get(ref.name)
    tag = ref.tag or (known.default_tag if known else None)
    if tag not in RECIPE_TAGS:
        return None
    say = progress or printer("ovchat")
    if known is not None:
        path = models_dir() / known.dirs.get(tag, f"{ref.name}-{tag}")
        how = "keeping the GGUF's own 4-bit weights" if tag == GGUF_FORMAT else tag
        if tag == known.default_tag:
            say(
                f"first run: preparing the default model {known.display} ({ref.name}:{tag}; "
                f"GGUF → OpenVINO, {how}, a few minutes, once) into {path}"
            )
        else:
            say(f"first use of {ref.name}:{tag}: preparing {known.display} (GGUF → OpenVINO, "
                f"{how}, once) into {path}")  # fmt: skip
        return _pull(
            known.source(), ref.with_tag(tag), recipe_for_tag(known.recipe, tag), force=False,
            say=say, generation=known.generation, display=known.display, known=known,
        )  # fmt: skip
    origin = _origin(ref.name)
    if origin is None:
        return None
    source, base, manifest = origin
    say(f"first use of {ref.name}:{tag}: pulling it from {source} (once)")
    return _pull(
        source, ref.with_tag(tag), recipe_for_tag(base, tag), force=False, say=say,
        generation=manifest.get("generation_overrides") or None,
        embedding=_embedding_overrides(manifest), display=manifest.get("name"), first_use=True,
    )  # fmt: skip


def _origin(name: str) -> tuple[str, Recipe, dict[str, Any]] | None:
    """Where another tag of `name` came from, if that source is still reachable."""
    for e in list_entries(name):
        with contextlib.suppress(Exception):
            m = read_manifest(e.dir)
            src = m["source"]
            kind, model = src["kind"], str(src["model"])
            if kind in ("gguf", "dir") and not Path(model).exists():
                continue
            fields = {f.name for f in dataclasses.fields(Recipe)}
            asked = {k: v for k, v in (m["recipe"]["asked"] or {}).items() if k in fields}
            return model, Recipe(**asked), m
    return None


def _embedding_overrides(manifest: dict[str, Any]) -> dict[str, Any] | None:
    emb = manifest.get("embedding")
    if not isinstance(emb, dict):
        return None
    guessed = set(emb.get("guessed") or ())
    keep = (
        "pooling", "normalize", "query_instruction", "embed_instruction", "max_length",
        "matryoshka",
    )  # fmt: skip
    return {k: emb[k] for k in keep if k in emb and k not in guessed}

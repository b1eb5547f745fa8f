"""The offline English corpus eval and bench measure on: CPython's pydoc topics (never a
download), in a fixed order."""

from __future__ import annotations

from pathlib import Path


def corpus_text() -> str:
    """Offline English: CPython's pydoc topics, in a fixed order (no download, ever)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def corpus_windows(hf_dir: Path, max_tokens: int, window: int) -> list[list[int]]:
    """The corpus tokenized by the reference's tokenizer, cut into windows of `window` tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    ids: list[int] = tok(corpus_text()[: max_tokens * 8], add_special_tokens=False)["input_ids"]
    ids = ids[:max_tokens]
    windows = [ids[i : i + window] for i in range(0, len(ids), window)]
    return [w for w in windows if len(w) >= 2]

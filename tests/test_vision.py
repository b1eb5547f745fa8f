"""Vision-language models: a tiny random-weight LLaVA exported with optimum-intel and run by
openvino-genai, checked against PyTorch on the same weights and image; images in the Python
API and the CLI; bad images refused with the part named."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_cli
from vlmbuild import GEMMA3_IMAGE_TOKENS, LLAVA_IMAGE_SIZE, LLAVA_IMAGE_TOKENS

import ovchat
from ovchat.engine.images import MAX_IMAGE_BYTES, MAX_IMAGES, ImageError
from ovchat.errors import OptionError
from ovchat.modeldir import check_model_dir, read_model_info

F32 = {"INFERENCE_PRECISION_HINT": "f32"}  # genai at f32, as PyTorch: same greedy tokens
TOKENS = 12


def flat(rgb: tuple[int, int, int]) -> np.ndarray:
    img = np.zeros((LLAVA_IMAGE_SIZE, LLAVA_IMAGE_SIZE, 3), np.uint8)
    img[...] = rgb
    return img


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def llava_prompt_ids(tok: Any, question: str) -> Any:
    """The prompt LlavaProcessor makes: the chat template with the image first in the user
    message, the image token repeated once per image token."""
    content = [{"type": "image"}, {"type": "text", "text": question}]
    text = tok.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    text = text.replace("<image>", "<image>" * LLAVA_IMAGE_TOKENS)
    return tok(text, return_tensors="pt", add_special_tokens=False).input_ids


def gemma3_prompt_ids(tok: Any, question: str) -> Any:
    """The prompt Gemma3Processor makes: the image's tokens between blank lines."""
    content = [{"type": "image"}, {"type": "text", "text": question}]
    text = tok.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    soft = "<image_soft_token>" * GEMMA3_IMAGE_TOKENS
    text = text.replace("<start_of_image>", f"\n\n<start_of_image>{soft}<end_of_image>\n\n")
    return tok(text, return_tensors="pt", add_special_tokens=False).input_ids


def hf_prompt_tokens(hf: Path, question: str) -> int:
    """How many tokens the model sees for `question` with one image, as transformers'
    processor builds the prompt (the image tokens included)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf)
    arch = str(read_json(hf / "config.json")["model_type"])
    ids = gemma3_prompt_ids(tok, question) if arch == "gemma3" else llava_prompt_ids(tok, question)
    return int(ids.shape[1])


def read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_text())


def torch_answer(hf: Path, question: str, img: np.ndarray) -> str:
    """PyTorch's greedy answer: the model's chat template with the image first in the user
    message, the image token repeated as LlavaProcessor does, CLIP's image processor."""
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(hf)
    model = LlavaForConditionalGeneration.from_pretrained(hf).eval()
    ids = llava_prompt_ids(tok, question)
    pixels = CLIPImageProcessor.from_pretrained(hf)(images=img, return_tensors="pt").pixel_values
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, pixel_values=pixels, max_new_tokens=TOKENS, do_sample=False
        )
    return str(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def torch_answer_gemma3(hf: Path, question: str, img: np.ndarray) -> str:
    """PyTorch's greedy answer as Gemma3Processor prepares it: the image's tokens between
    blank lines, marked in token_type_ids (Gemma 3 attends to them both ways)."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForConditionalGeneration
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    tok = AutoTokenizer.from_pretrained(hf)
    model = Gemma3ForConditionalGeneration.from_pretrained(hf).eval()
    ids = gemma3_prompt_ids(tok, question)
    types = (ids == model.config.image_token_id).long()
    pixels = Gemma3ImageProcessorPil.from_pretrained(hf)(images=img, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, pixel_values=pixels.pixel_values, token_type_ids=types,
            max_new_tokens=TOKENS, do_sample=False,
        )  # fmt: skip
    return str(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


@pytest.mark.parametrize("rgb", [(200, 40, 90), (10, 220, 30)])
def test_gemma3_answers_match_pytorch(tiny_gemma3, tiny_gemma3_hf, rgb):
    assert read_model_info(tiny_gemma3).kind == "vision"
    img = flat(rgb)
    question = "Describe the picture."
    with ovchat.load(tiny_gemma3, **F32) as m:
        ours = m.generate(question, images=[img], max_new_tokens=TOKENS, temperature=0)
        other = flat(tuple(255 - c for c in rgb))  # type: ignore[arg-type]
        assert m.generate(question, images=[other], max_new_tokens=TOKENS, temperature=0) != ours
    assert ours == torch_answer_gemma3(tiny_gemma3_hf, question, img)


@pytest.fixture(scope="module")
def llava(tiny_llava: Path) -> Any:
    with ovchat.load(tiny_llava, **F32) as m:
        yield m


def test_export_is_a_vision_model(tiny_llava):
    assert check_model_dir(tiny_llava) == tiny_llava.resolve()
    info = read_model_info(tiny_llava)
    assert info.kind == "vision" and info.context_length == 512  # from text_config
    assert (tiny_llava / "openvino_vision_embeddings_model.xml").is_file()
    # genai reads the image size from here (transformers 5 writes processor_config.json)
    assert '"shortest_edge": 56' in (tiny_llava / "preprocessor_config.json").read_text()


@pytest.mark.parametrize("rgb", [(200, 40, 90), (10, 220, 30)])
def test_answers_match_pytorch(llava, tiny_llava_hf, rgb):
    img = flat(rgb)
    question = "Describe the picture."
    ours = llava.generate(question, images=[img], max_new_tokens=TOKENS, temperature=0)
    assert ours == torch_answer(tiny_llava_hf, question, img)
    # the image is really seen: another picture, another answer
    other = flat(tuple(255 - c for c in rgb))  # type: ignore[arg-type]
    assert llava.generate(question, images=[other], max_new_tokens=TOKENS, temperature=0) != ours


def test_image_sources_and_conversation(llava, tmp_path):
    img = flat((200, 40, 90))
    path = tmp_path / "red.png"
    path.write_bytes(png(img))
    q = "What is this?"
    answers = {
        llava.generate(q, images=[src], max_new_tokens=8, temperature=0)
        for src in (img, png(img), path, str(path))
    }
    assert len(answers) == 1  # an array, PNG bytes and a file are the same image
    # a conversation resends its images with every turn
    chat = llava.chat(max_new_tokens=6, temperature=0)
    first = chat.send(q, images=[path])
    assert first == llava.generate(q, images=[path], max_new_tokens=6, temperature=0)
    second = chat.send("And the colour?")
    msgs = chat.messages
    assert msgs[0]["content"] == "<ov_genai_image_0>" + q and msgs[1]["content"] == first
    again = llava.generate([*msgs[:2], {"role": "user", "content": "And the colour?"}],
                           images=[path], max_new_tokens=6, temperature=0)  # fmt: skip
    assert second == again


def test_bad_images_name_the_part(llava, tiny_llama, tmp_path):
    from PIL import Image

    with pytest.raises(ImageError, match="not an image") as e:
        llava.generate("hi", images=[png(flat((1, 2, 3))), b"GIF89a nonsense"])
    assert e.value.param == "images[1]"
    with pytest.raises(ImageError, match=f"at most {MAX_IMAGES}"):
        llava.generate("hi", images=[flat((1, 2, 3))] * (MAX_IMAGES + 1))
    with pytest.raises(ImageError, match="MB"):
        llava.generate("hi", images=[b"\x89PNG" + b"\0" * MAX_IMAGE_BYTES])
    huge = tmp_path / "huge.png"
    Image.new("1", (5000, 4000)).save(huge)  # small on disk, 20 megapixels decoded
    assert huge.stat().st_size < MAX_IMAGE_BYTES
    with pytest.raises(ImageError, match="5000x4000 pixels") as e:
        llava.generate("hi", images=[huge])
    assert e.value.param == "images[0]"
    with pytest.raises(ImageError, match="cannot read"):
        llava.generate("hi", images=[tmp_path / "missing.png"])
    with ovchat.load(tiny_llama) as text_only:
        with pytest.raises(OptionError, match="text-only model") as e:
            text_only.generate("hi", images=[flat((1, 2, 3))])
        assert e.value.param == "images"


def test_cli_generate_with_images(tiny_llava, tmp_path):
    red = tmp_path / "red.png"
    red.write_bytes(png(flat((200, 40, 90))))
    args = ["generate", "-m", str(tiny_llava), "Describe the picture.", "--temperature", "0",
            "--max-new-tokens", "8", "-p", "INFERENCE_PRECISION_HINT=f32"]  # fmt: skip
    one = run_cli(*args, "--image", str(red))
    assert one.returncode == 0, one.stderr
    with ovchat.load(tiny_llava, **F32) as m:
        expected = m.generate("Describe the picture.", images=[red], max_new_tokens=8,
                              temperature=0)  # fmt: skip
    assert one.stdout.strip() == expected.strip()
    two = run_cli(*args, "--image", str(red), "--image", str(red))
    assert two.returncode == 0, two.stderr
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    refused = run_cli(*args, "--image", str(bad))
    assert refused.returncode == 2
    assert "not an image" in refused.stderr and "--image" in refused.stderr


def test_chat_image_command(tiny_llava, tmp_path):
    red = tmp_path / "red.png"
    red.write_bytes(png(flat((200, 40, 90))))
    (tmp_path / "notes.txt").write_text("hello")
    lines = [f"/image {tmp_path / 'notes.txt'}", f"/image {red}", "Describe the picture.", "/save "
             + str(tmp_path / "conv.json")]  # fmt: skip
    r = run_cli("chat", "-m", str(tiny_llava), "-n", "8", "-t", "0", "--no-stats",
                "-p", "INFERENCE_PRECISION_HINT=f32", input="\n".join(lines) + "\n")  # fmt: skip
    assert "not an image" in r.stderr  # the text file is refused, the chat goes on
    assert "image attached (1)" in r.stdout + r.stderr
    import json

    saved = json.loads((tmp_path / "conv.json").read_text())
    assert saved[0]["content"] == "<ov_genai_image_0>Describe the picture."
    with ovchat.load(tiny_llava, **F32) as m:
        expected = m.generate("Describe the picture.", images=[red], max_new_tokens=8,
                              temperature=0)  # fmt: skip
    assert saved[1]["content"] == expected


def test_pull_finds_the_vision_part_and_lists_the_kind(tiny_llava_hf, tmp_path):
    """`ovchat pull` of a vision-language model's HF dir needs no task: its config's
    vision part picks image-text-to-text; int8 weights; `list`, `show` and generate."""
    env = {"OVCHAT_HOME": str(tmp_path / "home")}
    pulled = run_cli("pull", str(tiny_llava_hf), "tinyvision:int8", "--weight-format", "int8",
                     env=env)  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    listed = run_cli("list", env=env)
    row = next(ln for ln in listed.stdout.splitlines() if ln.startswith("tinyvision:int8"))
    assert row.split()[2] == "vision"
    shown = run_cli("show", "tinyvision:int8", env=env)
    assert "vision" in shown.stdout and "512 tokens" in shown.stdout
    red = tmp_path / "red.png"
    red.write_bytes(png(flat((200, 40, 90))))
    answer = run_cli("generate", "-m", "tinyvision:int8", "hi", "--image", str(red), "-n", "4",
                     "--json", env=env)  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert '"generated_tokens": 4' in answer.stdout


def test_qwen2_vl_export_refused_in_one_line(tmp_path):
    """optimum-intel 2.2 exports Qwen2-VL with transformers 5.0 or older only: one line with
    what and what to do (this venv's transformers is newer)."""
    import transformers
    from vlmbuild import build_tiny_qwen2vl

    if tuple(int(x) for x in transformers.__version__.split(".")[:2]) <= (5, 0):
        pytest.skip("this transformers still exports Qwen2-VL")
    hf = build_tiny_qwen2vl(tmp_path / "qwen2vl-hf")
    r = run_cli("export", str(hf), str(tmp_path / "out"), "--weight-format", "fp32",
                env={"OVCHAT_HOME": str(tmp_path / "home")})  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    error = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(error) == 1 and "takes older transformers" in error[0]
    assert f"got: {transformers.__version__}" in error[0] and "by its path" in error[0]
    assert not (tmp_path / "out").exists()

"""Tiny random-weight vision-language models built from a config (tests only; no hub).

LLaVA: a CLIP vision tower (56x56 images, 14-pixel patches: 16 image tokens) and a Llama
language model; Gemma 3: a SigLIP tower and a Gemma 3 language model. Each with a BPE
tokenizer trained on CPython's docs and its image processor saved beside it, as
`save_pretrained` would for a real one.
"""

from __future__ import annotations

import json
from pathlib import Path

LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '</s>\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
LLAVA_IMAGE_SIZE = 56
LLAVA_IMAGE_TOKENS = 16  # (56 / 14) ** 2 patches, the CLS token dropped ("default")


def build_tiny_llava(out: Path) -> Path:
    import torch
    from conftest import train_tokenizer
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration

    tok = train_tokenizer(["<s>", "</s>", "<image>", "<pad>"], "<s>", "</s>", LLAVA_TEMPLATE)
    torch.manual_seed(0)
    text = dict(
        model_type="llama", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    vision = dict(
        model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, image_size=LLAVA_IMAGE_SIZE, patch_size=14,
        projection_dim=32,
    )  # fmt: skip
    image_id = tok.convert_tokens_to_ids("<image>")
    cfg = LlavaConfig(
        text_config=text, vision_config=vision, image_token_index=image_id,
        vision_feature_layer=-2, vision_feature_select_strategy="default",
        image_seq_length=LLAVA_IMAGE_TOKENS,
    )  # fmt: skip
    model = LlavaForConditionalGeneration(cfg)
    with torch.no_grad():  # larger than default init, so that logits are not all alike
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.08)
    model.eval().save_pretrained(out)
    size = LLAVA_IMAGE_SIZE
    CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    ).save_pretrained(out)
    tok.save_pretrained(out)
    (out / "chat_template.json").write_text(json.dumps({"chat_template": LLAVA_TEMPLATE}))
    return out


GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
GEMMA3_IMAGE_SIZE = 56
GEMMA3_IMAGE_TOKENS = 4  # 4x4 patches of 14 pixels, average-pooled to 2x2


def build_tiny_gemma3(out: Path) -> Path:
    """Gemma 3: a SigLIP vision tower (56x56 images) and a Gemma 3 language model (untied
    output layer: tied random embeddings answer one token only)."""
    import torch
    from conftest import train_tokenizer
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    specials = ["<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>",
                "<start_of_image>", "<end_of_image>", "<image_soft_token>"]  # fmt: skip
    tok = train_tokenizer(specials, "<bos>", "<end_of_turn>", GEMMA3_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials[5:]}
    torch.manual_seed(0)
    text = dict(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
        sliding_window=64, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=GEMMA3_IMAGE_SIZE, patch_size=14, vision_use_head=False,
    )  # fmt: skip
    cfg = Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=GEMMA3_IMAGE_TOKENS,
        boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"], tie_word_embeddings=False,
    )  # fmt: skip
    model = Gemma3ForConditionalGeneration(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.08)
    model.eval().save_pretrained(out)
    size = {"height": GEMMA3_IMAGE_SIZE, "width": GEMMA3_IMAGE_SIZE}
    Gemma3ImageProcessorPil(size=size, do_pan_and_scan=False).save_pretrained(out)
    tok.save_pretrained(out)
    (out / "chat_template.json").write_text(json.dumps({"chat_template": GEMMA3_TEMPLATE}))
    return out


def build_tiny_qwen2vl(out: Path) -> Path:
    """A tiny Qwen2-VL (weights as initialised): only for what its export does."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    text = dict(
        vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
    )  # fmt: skip
    vision = dict(
        depth=2, embed_dim=32, hidden_size=64, num_heads=2, patch_size=14,
        spatial_merge_size=2, temporal_patch_size=2, in_channels=3, mlp_ratio=2,
    )  # fmt: skip
    Qwen2VLForConditionalGeneration(
        Qwen2VLConfig(text_config=text, vision_config=vision, **text)
    ).save_pretrained(out)
    return out

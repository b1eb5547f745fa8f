"""Tiny random-weight vision-language models built from a config (tests only; no hub).

LLaVA: a CLIP vision tower (56x56 images, 14-pixel patches: 16 image tokens) and a Llama
language model, with a BPE tokenizer trained on CPython's docs and an image processor saved
beside them, as `LlavaForConditionalGeneration.save_pretrained` would for a real one.
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

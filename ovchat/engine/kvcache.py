"""Sizing the batching engine's KV-cache pool.

genai takes the pool as whole GB (`SchedulerConfig.cache_size`) or as a number of blocks
(`num_kv_blocks`). Whole numbers go to genai as they are; for a fraction (e.g. 0.5) the
number of blocks is computed here from the model's shape and the cache precision, as the
CPU plugin lays a block out (measured against genai's own `kv_cache_size_in_bytes`: exact
for u8, f16 and bf16). Elsewhere (another device, an unknown precision) a fraction is
rounded up to whole GB, with a warning.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("ovchat.engine")

GIB = 1 << 30  # genai's "GB" is a GiB
CPU_BLOCK_TOKENS = 32  # the CPU plugin's paged-attention block
# u8 (the CPU default): keys quantized per channel, values per token, each with an f32
# scale and zero point; f16/bf16/f32 store plain values.
ELEMENT_BYTES = {"f16": 2, "bf16": 2, "f32": 4}


def block_bytes(model_dir: Path, device: str, properties: Mapping[str, Any]) -> int | None:
    """Bytes of one KV-cache block for this model (all layers), or None where unknown."""
    if device.upper() != "CPU":
        return None
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
        if isinstance(cfg.get("text_config"), dict):  # a vision-language model's text part
            cfg = cfg["text_config"]
        layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
        kv_heads = int(cfg.get("num_key_value_heads") or heads)
        dim = int(cfg.get("head_dim") or cfg["hidden_size"] // heads)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    precision = str(properties.get("KV_CACHE_PRECISION", "u8")).lower()
    precision = {"uint8_t": "u8", "float16": "f16", "bfloat16": "bf16", "float32": "f32"}.get(
        precision, precision
    )
    b = CPU_BLOCK_TOKENS
    if precision == "u8":
        per_head = (b * dim + 8 * dim) + (b * dim + 8 * b)  # keys by channel, values by token
    elif precision in ELEMENT_BYTES:
        per_head = 2 * b * dim * ELEMENT_BYTES[precision]
    else:
        return None
    return layers * kv_heads * per_head


def configure(sched: Any, kv_cache_gb: float, model_dir: Path, device: str, props: Any) -> None:
    """Set `sched`'s pool to `kv_cache_gb` (GiB): whole GB as genai takes them, else blocks."""
    if kv_cache_gb == int(kv_cache_gb):
        sched.cache_size = int(kv_cache_gb)
        return
    per_block = block_bytes(model_dir, device, props)
    if per_block is None:
        sched.cache_size = max(1, math.ceil(kv_cache_gb))
        log.warning(
            "a KV-cache pool of %g GB is rounded up to %d GB on %s (genai takes whole GB)",
            kv_cache_gb,
            sched.cache_size,
            device,
        )
        return
    sched.num_kv_blocks = max(1, int(kv_cache_gb * GIB // per_block))


def pool_tokens(sched: Any, model_dir: Path, device: str, props: Any) -> int | None:
    """Tokens the configured pool holds (None where the block size is unknown)."""
    per_block = block_bytes(model_dir, device, props)
    if per_block is None:
        return None
    blocks = sched.num_kv_blocks or (sched.cache_size * GIB // per_block)
    return int(blocks) * CPU_BLOCK_TOKENS

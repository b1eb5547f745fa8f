"""The three answer backends of `ovchat eval` (answers.py): the export (openvino-genai's
ContinuousBatchingPipeline), the unquantized reference (transformers, fp32) and llama.cpp
on a GGUF (llama-cpp-python). Each takes the same prompt ids and returns, per prompt and
seed, the generated ids (end token removed) and whether the answer ended on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine.planner import Planner
from ..engine.runtime import DEFAULT_PROPERTIES
from ..engine.sampling import apply_options
from ..modeldir import read_model_info
from ..options import GenerationOptions
from ..progress import Progress

BATCH_KV_CACHE_GB = 2  # the KV pool for one seed's answers (26 prompts x 256+ tokens fit)
BATCH_MAX_SEQS = 64
TORCH_BATCH = 32  # prompts per transformers generate() call (left-padded)
TORCH_THREADS = 1
LLAMACPP_THREADS = 1
LLAMACPP_CONTEXT = 2048
Raw = tuple[int, int, list[int], bool]


def _seed(seed: int, i: int) -> int:
    """Each prompt of a seed gets its own sampling seed (the same on every backend)."""
    return seed * 1000 + i


class ExportAnswers:
    """The export, as `ovchat serve` runs it: all prompts of one seed in one batch."""

    def __init__(self, model_dir: Path, sampling: dict[str, Any]) -> None:
        import openvino_genai as ov_genai

        sched = ov_genai.SchedulerConfig()
        sched.cache_size = BATCH_KV_CACHE_GB
        sched.max_num_seqs = BATCH_MAX_SEQS
        sched.enable_prefix_caching = False
        self.pipe = ov_genai.ContinuousBatchingPipeline(
            str(model_dir), sched, "CPU", dict(DEFAULT_PROPERTIES)
        )
        self.tokenizer = self.pipe.get_tokenizer()
        self.planner = Planner(self.tokenizer, read_model_info(model_dir).context_length)
        self.sampling = dict(sampling)
        base = self.pipe.get_config()
        self.eos = {int(t) for t in base.stop_token_ids} | {int(base.eos_token_id)}

    def prompt_ids(self, text: str) -> list[int]:
        return self.planner.encode(self.planner.render([{"role": "user", "content": text}]))

    def config(self, max_new_tokens: int, seed: int) -> Any:
        """The model's own generation_config with the given sampling on top (the product's
        path: GenerationOptions → apply_options)."""
        opts = GenerationOptions(max_new_tokens=max_new_tokens, seed=seed, **self.sampling)
        return apply_options(self.pipe.get_config(), opts)

    def effective_sampling(self) -> dict[str, Any]:
        c = self.config(1, 0)
        out = {
            "do_sample": bool(c.do_sample),
            "temperature": round(float(c.temperature), 4),
            "top_p": round(float(c.top_p), 4),
            "top_k": int(c.top_k) if int(c.top_k) < 2**31 - 1 else 0,
            "min_p": round(float(c.min_p), 4),
            "repetition_penalty": round(float(c.repetition_penalty), 4),
            "presence_penalty": round(float(c.presence_penalty), 4),
            "frequency_penalty": round(float(c.frequency_penalty), 4),
            # genai's "off" is the largest size_t
            "no_repeat_ngram_size": n if (n := int(c.no_repeat_ngram_size)) < 2**31 else 0,
        }
        return {k: v for k, v in out.items() if k not in ("top_k", "min_p") or v}

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def generate(self, ids_list: list[list[int]], seeds: list[int], max_new_tokens: int,
                 progress: Progress) -> list[Raw]:  # fmt: skip
        import numpy as np
        import openvino as ov

        out: list[Raw] = []
        for seed in seeds:
            cfgs = [self.config(max_new_tokens, _seed(seed, i)) for i in range(len(ids_list))]
            tensors = [ov.Tensor(np.asarray([ids], dtype=np.int64)) for ids in ids_list]
            for i, r in enumerate(self.pipe.generate(tensors, cfgs)):
                out.append(self._raw(i, seed, [int(x) for x in r.m_generation_ids[0]],
                                     max_new_tokens))  # fmt: skip
            progress(f"  seed {seed}: {len(out)} answers")
        return out

    def _raw(self, i: int, seed: int, g: list[int], budget: int) -> Raw:
        body = [t for t in g if t not in self.eos]
        return i, seed, body, len(body) < len(g) or len(g) < budget


class TorchAnswers:
    """The unquantized reference through transformers (fp32), one batch per seed."""

    def __init__(self, hf_dir: Path, sampling: dict[str, Any]) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        # One thread: on a shared, loaded machine two threads' barriers cost 5-10x (measured).
        torch.set_num_threads(TORCH_THREADS)
        self.model: Any = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
        self.model.eval()
        gc = json.loads((hf_dir / "generation_config.json").read_text()) if (
            hf_dir / "generation_config.json").is_file() else {}  # fmt: skip
        eos = gc.get("eos_token_id", self.model.config.eos_token_id)
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.s = sampling
        self._width = 0  # the padded prompt width of the batch being generated

    def _config(self, max_new_tokens: int) -> tuple[Any, list[Any]]:
        from transformers import GenerationConfig, LogitsProcessor

        s = self.s
        kw: dict[str, Any] = {"do_sample": s["do_sample"] and s["temperature"] > 0}
        if kw["do_sample"]:
            kw.update(temperature=s["temperature"], top_p=s["top_p"],
                      top_k=s.get("top_k") or None, min_p=s.get("min_p") or None)  # fmt: skip
        if s["repetition_penalty"] != 1.0:
            kw["repetition_penalty"] = s["repetition_penalty"]
        if s["no_repeat_ngram_size"]:
            kw["no_repeat_ngram_size"] = s["no_repeat_ngram_size"]
        width = self._width

        class Penalties(LogitsProcessor):  # OpenAI's presence/frequency penalties, which
            # transformers lacks: counted over the generated tokens only, as genai does.
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                import torch

                gen = input_ids[:, width:]
                counts = torch.zeros_like(scores).scatter_add_(
                    1, gen, torch.ones_like(gen, dtype=scores.dtype)
                )
                return (scores - s["frequency_penalty"] * counts
                        - s["presence_penalty"] * (counts > 0).to(scores.dtype))  # fmt: skip

        procs = [Penalties()] if s["frequency_penalty"] or s["presence_penalty"] else []
        pad = min(self.eos)
        return GenerationConfig(max_new_tokens=max_new_tokens, eos_token_id=sorted(self.eos),
                                pad_token_id=pad, **kw), procs  # fmt: skip

    def generate(self, ids_list: list[list[int]], seeds: list[int], max_new_tokens: int,
                 progress: Progress) -> list[Raw]:  # fmt: skip
        import torch
        from transformers import LogitsProcessorList

        torch.set_grad_enabled(False)
        out: list[Raw] = []
        pad = min(self.eos)
        for seed in seeds:
            for b0 in range(0, len(ids_list), TORCH_BATCH):
                chunk = ids_list[b0 : b0 + TORCH_BATCH]
                self._width = width = max(map(len, chunk))
                x = torch.tensor([[pad] * (width - len(c)) + c for c in chunk])
                mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk])
                gc, procs = self._config(max_new_tokens)
                torch.manual_seed(seed)
                y = self.model.generate(input_ids=x, attention_mask=mask, generation_config=gc,
                                        logits_processor=LogitsProcessorList(procs))  # fmt: skip
                for j, row in enumerate(y[:, width:].tolist()):
                    body: list[int] = []
                    ended = False
                    for t in row:
                        if t in self.eos:
                            ended = True
                            break
                        body.append(t)
                    out.append((b0 + j, seed, body, ended or len(body) < max_new_tokens))
            progress(f"  seed {seed}: {len(out)} answers")
        return out


class LlamaCppAnswers:
    """llama.cpp on the GGUF (llama-cpp-python), one answer at a time. Its penalties look at
    the last 64 tokens (llama.cpp's default window), genai's at the whole answer."""

    def __init__(self, gguf: Path, sampling: dict[str, Any]) -> None:
        import llama_cpp

        self.llm = llama_cpp.Llama(str(gguf), n_ctx=LLAMACPP_CONTEXT, verbose=False,
                                   n_threads=LLAMACPP_THREADS)  # fmt: skip
        self.eos = {int(self.llm.token_eos())}
        self.s = sampling

    def generate(self, ids_list: list[list[int]], seeds: list[int], max_new_tokens: int,
                 progress: Progress) -> list[Raw]:  # fmt: skip
        s = self.s
        out: list[Raw] = []
        for seed in seeds:
            for i, ids in enumerate(ids_list):
                self.llm.reset()
                self.llm.set_seed(_seed(seed, i))
                body: list[int] = []
                ended = False
                for t in self.llm.generate(
                    ids,
                    temp=s["temperature"] if s["do_sample"] else 0.0,
                    top_p=s["top_p"],
                    top_k=s.get("top_k", 0),
                    min_p=s.get("min_p", 0.0),
                    repeat_penalty=s["repetition_penalty"],
                    presence_penalty=s["presence_penalty"],
                    frequency_penalty=s["frequency_penalty"],
                    reset=True,
                ):
                    if int(t) in self.eos:
                        ended = True
                        break
                    body.append(int(t))
                    if len(body) >= max_new_tokens:
                        break
                out.append((i, seed, body, ended))
            progress(f"  seed {seed}: {len(out)} answers")
        return out

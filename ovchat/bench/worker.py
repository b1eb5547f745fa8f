"""The worker side of `ovchat bench`: one engine measured in its own process.

The parent (runner.py) sends a job as JSON on stdin; progress lines go to stderr; the
figures are written to the job's `out` file.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..options import GenerationOptions
from ..progress import printer
from .runner import OPTIMUM_OV_CONFIG, BenchSettings, summary


# -- the worker (one engine, in its own process) ----------------------------------------------
class Runner:
    """One engine: load it, then generate exactly n new tokens from a prompt, timed."""

    size_mb: float = 0.0

    def prepare(self) -> None:
        """Import the engine's libraries (kept out of the load time)."""

    def load(self, cache: str | None) -> None:
        raise NotImplementedError

    def unload(self) -> None:
        raise NotImplementedError

    def run(self, prompt: str, n_new: int) -> tuple[float, float | None, int, int]:
        """Return (ttft s, decode tok/s after the first, prompt tokens, generated tokens)."""
        raise NotImplementedError

    @property
    def uses_ov_cache(self) -> bool:
        return False


def _size_mb(paths: Iterator[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


class OvchatRunner(Runner):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.dir = Path(spec["model_dir"])
        # As many threads as llama.cpp and torch get (OpenVINO's default: all cores).
        threads = {"INFERENCE_NUM_THREADS": str(spec["settings"]["threads"])}
        self.props = {**threads, **spec["properties"]}
        self.device = spec.get("device", "CPU")
        self.size_mb = _size_mb(self.dir.glob("openvino_model.*"))

    @property
    def uses_ov_cache(self) -> bool:
        return True

    def prepare(self) -> None:
        import openvino_genai  # noqa: F401

    def load(self, cache: str | None) -> None:
        from ..engine import Engine

        self.engine = Engine(
            self.dir, self.device, properties={"CACHE_DIR": cache or "", **self.props}
        )

    def unload(self) -> None:
        self.engine.close()
        del self.engine

    def run(self, prompt: str, n_new: int) -> tuple[float, float | None, int, int]:
        options = GenerationOptions(
            max_new_tokens=n_new, temperature=0, repetition_penalty=1.0, ignore_eos=True
        )  # greedy, no penalty, EOS ignored: the same work for every engine
        c = self.engine.generate(prompt, options)
        assert c.ttft is not None
        return c.ttft, c.tokens_per_second, c.prompt_tokens, c.generated_tokens


class _TimingStreamer:
    """A transformers streamer that only notes when each token arrives.

    By hand because transformers' streamers decode text; we need timestamps.
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first puts the prompt
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


class HFRunner(Runner):
    """transformers generate(): optimum-intel's OVModelForCausalLM or PyTorch."""

    def __init__(self, spec: dict[str, Any], kind: str) -> None:
        self.kind = kind
        if kind == "optimum":
            self.dir = Path(spec["model_dir"])
            self.size_mb = _size_mb(self.dir.glob("openvino_model.*"))
        else:
            self.dir = Path(spec["hf_dir"])
            self.size_mb = _size_mb(
                p for pat in ("*.safetensors", "*.bin") for p in self.dir.glob(pat)
            )

    @property
    def uses_ov_cache(self) -> bool:
        return self.kind == "optimum"

    def prepare(self) -> None:
        import transformers
        from transformers import AutoModelForCausalLM  # noqa: F401

        transformers.logging.set_verbosity_error()
        if self.kind == "optimum":
            from optimum.intel.openvino import OVModelForCausalLM  # noqa: F401

    def load(self, cache: str | None) -> None:
        import torch
        from transformers import AutoConfig, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(self.dir))
        if self.kind == "optimum":  # optimum-intel's OVModelForCausalLM, on CPU
            from optimum.intel.openvino import OVModelForCausalLM

            self.model = OVModelForCausalLM.from_pretrained(
                str(self.dir),
                device="CPU",
                ov_config={**OPTIMUM_OV_CONFIG, "CACHE_DIR": cache or ""},
                config=AutoConfig.from_pretrained(str(self.dir)),
            )
        else:
            from transformers import AutoModelForCausalLM

            dtype = torch.bfloat16 if self.kind == "torch-bf16" else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(str(self.dir), dtype=dtype).eval()

    def unload(self) -> None:
        del self.model

    def run(self, prompt: str, n_new: int) -> tuple[float, float | None, int, int]:
        import torch

        inputs = self.tok(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = _TimingStreamer()
        t0 = time.perf_counter()
        with torch.inference_mode():
            self.model.generate(
                **inputs,
                max_new_tokens=n_new,
                min_new_tokens=n_new,  # EOS ignored: the same count for every engine
                do_sample=False,
                repetition_penalty=1.0,
                streamer=streamer,
                pad_token_id=self.tok.eos_token_id,
            )
        ts = streamer.times
        tps = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else None
        return ts[0] - t0, tps, int(inputs["input_ids"].shape[1]), len(ts)


class LlamaCppRunner(Runner):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.path = Path(spec["gguf"])
        self.hf_tok_dir = Path(spec["model_dir"])
        self.threads = int(spec["settings"]["threads"])
        self.n_ctx = int(spec["context_length"])
        self.size_mb = _size_mb(iter([self.path]))

    def prepare(self) -> None:
        import llama_cpp  # noqa: F401

    def load(self, cache: str | None) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(self.path),
            n_ctx=min(self.n_ctx, 4096),
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_batch=512,
            verbose=False,
        )

    def unload(self) -> None:
        self.llm.close()
        del self.llm

    def run(self, prompt: str, n_new: int) -> tuple[float, float | None, int, int]:
        ids = self.llm.tokenize(prompt.encode(), add_bos=False, special=False)
        self.llm.reset()  # no prefix reuse between repetitions
        times: list[float] = []
        t0 = time.perf_counter()
        for _ in self.llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
            times.append(time.perf_counter())  # generate() never stops on EOS by itself
            if len(times) >= n_new:
                break
        tps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else None
        return times[0] - t0, tps, len(ids), len(times)


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over from the parent across fork+exec, VmHWM starts afresh with the new program."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_runner(spec: dict[str, Any]) -> Runner:
    name = spec["engine"]
    if name == "ovchat":
        return OvchatRunner(spec)
    if name in ("optimum", "torch-fp32", "torch-bf16"):
        return HFRunner(spec, name)
    if name == "llamacpp":
        return LlamaCppRunner(spec)
    raise OptionError(f"unknown engine {name}")


def measure(spec: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """In the worker: load cold and warm, then timed runs at the short and the long prompt."""
    s = BenchSettings(**spec["settings"])
    name = spec.get("label", spec["engine"])
    r = make_runner(spec)
    cache = str(Path(spec["tmp"]) / "ov_cache")
    # Cold: an empty OpenVINO model cache (compiled from the IR, and the cache written);
    # warm: the filled cache. torch and llama.cpp have no such cache: warm is their second
    # load, with the files in the OS page cache.
    say(f"{name}: loading cold")
    t = time.perf_counter()
    r.load(cache if r.uses_ov_cache else None)
    cold = time.perf_counter() - t
    r.unload()
    gc.collect()
    say(f"{name}: loaded cold in {cold:.1f}s; loading warm")
    t = time.perf_counter()
    r.load(cache if r.uses_ov_cache else None)
    warm = time.perf_counter() - t
    for i in range(s.warmups):
        say(f"{name}: warm-up {i + 1}/{s.warmups}")
        r.run(spec["prompts"]["short"], s.new_tokens)
        r.run(spec["prompts"]["long"], 2)
    ttft_s, ttft_l, decode, cpu_dec, cpu_pre = [], [], [], [], []
    n_prompt = {}
    generated = []
    for i in range(s.reps):
        cpu = time.process_time()  # the process's CPU time: robust to others' load
        ttft, tps, n_p, n_gen = r.run(spec["prompts"]["short"], s.new_tokens)
        cpu_dec.append((time.process_time() - cpu) * 1000 / max(1, n_gen))
        ttft_s.append(ttft * 1000)
        n_prompt["short"] = n_p
        generated.append(n_gen)
        if tps is not None:
            decode.append(tps)
        cpu = time.process_time()
        ttft, _, n_p, _ = r.run(spec["prompts"]["long"], 2)
        cpu_pre.append((time.process_time() - cpu) * 1000 / max(1, n_p))
        ttft_l.append(ttft * 1000)
        n_prompt["long"] = n_p
        say(
            f"{name}: rep {i + 1}/{s.reps}: TTFT {ttft_s[-1]:.0f} / {ttft_l[-1]:.0f} ms, "
            f"decode {decode[-1] if decode else float('nan'):.1f} tok/s"
        )
    rss_mb = peak_rss_mb()
    metrics = {
        "load_cold_s": summary([cold]),
        "load_warm_s": summary([warm]),
        "ttft_short_ms": summary(ttft_s),
        "ttft_long_ms": summary(ttft_l),
        "prefill_tps": summary([n_prompt["long"] / (t / 1000) for t in ttft_l]),
        "decode_tps": summary(decode or [float("nan")]),
        "decode_cpu_ms": summary(cpu_dec),
        "prefill_cpu_ms": summary(cpu_pre),
        "peak_rss_mb": summary([rss_mb]),
        "size_mb": summary([r.size_mb]),
    }
    info = {"prompt_tokens": n_prompt, "generated_tokens": generated}
    if isinstance(r, OvchatRunner):
        info["properties"] = {k: str(v) for k, v in r.engine.properties.items()}
    return {"metrics": metrics, "info": info}


def worker_main() -> None:
    spec = json.loads(sys.stdin.read())
    threads = int(spec["settings"]["threads"])
    if spec["engine"].startswith("torch"):
        import torch

        torch.set_num_threads(threads)

    result = measure(spec, printer("ovchat bench"))  # the parent relays these lines
    Path(spec["out"]).write_text(json.dumps(result))

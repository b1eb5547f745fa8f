"""`ovchat bench`'s engine: each engine measured in its own subprocess on the same prompts,
greedy with EOS ignored, figures with median and spread, ratios to ovchat.

See bench/worker.py for what runs inside each subprocess, bench/report.py for the tables
and the chart, ovchat/verbs/bench.py for the command line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError, OvchatError
from ..library import resolve
from ..modeldir import read_model_info
from ..progress import Progress, printer
from .gguf_import import source_gguf
from .machine import cpu_flags, cpu_model, has_bf16, llamacpp_available, versions

ENGINES = ("ovchat", "optimum", "torch-fp32", "torch-bf16", "llamacpp")
QUICK_ENGINES = ("ovchat", "optimum", "torch-fp32")
# optimum-intel's OVModelForCausalLM with the ov_config of its usual CPU setup.
OPTIMUM_OV_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "CACHE_DIR": ""}


@dataclass(frozen=True)
class BenchSettings:
    """How much to measure. `quick` is a smoke run (under a minute for the default model)."""

    short_tokens: int = 32
    long_tokens: int = 1000
    new_tokens: int = 64  # decoded per run, EOS ignored, so every engine decodes as many
    reps: int = 3  # medians of 3 after a warm-up: a full run in ~15 min on 2 cores
    warmups: int = 1
    threads: int = os.cpu_count() or 1  # llama.cpp and torch; OpenVINO uses all cores too


FULL = BenchSettings()
QUICK = BenchSettings(short_tokens=16, long_tokens=128, new_tokens=16, reps=2, warmups=1)
METRICS = (  # key, label, unit, higher is better
    ("load_cold_s", "load cold", "s", False),
    ("load_warm_s", "load warm", "s", False),
    ("ttft_short_ms", "TTFT short", "ms", False),
    ("ttft_long_ms", "TTFT long", "ms", False),
    ("prefill_tps", "prefill", "tok/s", True),
    ("decode_tps", "decode", "tok/s", True),
    ("decode_cpu_ms", "decode CPU", "ms/tok", False),  # load-robust: CPU time per token
    ("prefill_cpu_ms", "prefill CPU", "ms/tok", False),
    ("peak_rss_mb", "peak RSS", "MB", False),
    ("size_mb", "size on disk", "MB", False),
)
# Speed targets (reported, never asserted): ovchat's speed over the engine's.
TARGETS = (
    ("decode_tps", "llamacpp", 1.15),
    ("prefill_tps", "llamacpp", 5.0),
    ("prefill_tps", "torch-fp32", 4.0),
)
WORKER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Variant:
    """One column of a run: an engine on given files (`--shape` compares two exports of the
    same weights and two GGUF quantizations). Unset fields fall back to the run's."""

    label: str
    engine: str
    model_dir: str | None = None
    gguf: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


# -- prompts ---------------------------------------------------------------------------------
def prompt_text(tokenizer: Any, n_tokens: int) -> str:
    """About `n_tokens` of deterministic English from CPython's pydoc_data, cut at a word."""
    from ..evals.corpus import corpus_text

    words = corpus_text().split(" ")
    lo, hi = 1, min(len(words), n_tokens * 2)
    while lo < hi:  # the most words whose tokens fit
        mid = (lo + hi + 1) // 2
        if len(tokenizer(" ".join(words[:mid]), add_special_tokens=False)["input_ids"]) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


# -- results ---------------------------------------------------------------------------------
def summary(values: Sequence[float]) -> dict[str, Any]:
    vals = [float(v) for v in values]
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "values": vals,
    }


@dataclass
class EngineResult:
    engine: str
    ok: bool
    error: str | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)  # engine median / ovchat median
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchResult:
    model: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    versions: dict[str, str]
    prompts: dict[str, int]
    engines: list[EngineResult]
    targets: list[dict[str, Any]]
    skipped: dict[str, str]
    shape: dict[str, Any] | None = None  # `--shape`: which, and how long building it took

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def engine(self, name: str) -> EngineResult | None:
        return next((e for e in self.engines if e.engine == name and e.ok), None)


# -- the parent ------------------------------------------------------------------------------
def bench(
    model: str | Path | None = None,
    engines: Sequence[str] | None = None,
    quick: bool = False,
    settings: BenchSettings | None = None,
    device: str = "CPU",
    properties: dict[str, Any] | None = None,
    reference: str | Path | None = None,
    gguf: str | Path | None = None,
    progress: Progress | None = None,
    variants: Sequence[Variant] | None = None,
    rounds: int = 1,
) -> BenchResult:
    """Run each engine in a subprocess on the same prompts; return raw figures and ratios.

    `variants` replaces the engine list (`engines` then picks among their labels); with
    `rounds` > 1 every engine runs once per round, engines alternating (the order rotated
    each round), and its figures pool all rounds: load from others hits every engine alike."""
    progress = progress or printer("ovchat bench")
    from transformers import AutoTokenizer

    from ..evals.fidelity import reference_dir

    s = settings or (QUICK if quick else FULL)
    load_before = list(os.getloadavg())  # the machine's load says how far to trust timings
    known = [v.label for v in variants] if variants else list(ENGINES)
    wanted = list(engines or (known if variants else QUICK_ENGINES if quick else ENGINES))
    unknown = [e for e in wanted if e not in known]
    if unknown:
        raise OptionError(
            f"unknown engine(s) {', '.join(unknown)}", f"use {', '.join(known)}", param="engines"
        )
    by_label = {v.label: v for v in variants or [Variant(e, e) for e in ENGINES]}
    kinds = {by_label[e].engine for e in wanted}
    if gguf is not None and model is None and not variants:
        from .gguf_import import imported

        model_dir = imported(Path(gguf), progress)  # ovchat on its import of that very file
    else:
        model_dir = resolve(model)
    info = read_model_info(model_dir)
    skipped: dict[str, str] = {}
    hf_dir: Path | None = None
    if any(k.startswith("torch") for k in kinds):
        try:
            hf_dir = reference_dir(model_dir, reference, progress)
        except OvchatError as e:
            skipped.update({e2: str(e) for e2 in wanted if e2.startswith("torch")})
    if "torch-bf16" in kinds and not has_bf16():
        skipped["torch-bf16"] = "the CPU has neither avx512_bf16 nor AMX"
    gguf_path = _gguf_for(model_dir, gguf, info.manifest)
    same_gguf = gguf_path is not None and source_gguf(info.manifest) == gguf_path.resolve()
    for label in wanted:
        if by_label[label].engine != "llamacpp":
            continue
        if not llamacpp_available():
            skipped[label] = "llama-cpp-python is not installed (pip install ovchat[llamacpp])"
        elif gguf_path is None and by_label[label].gguf is None:
            skipped[label] = "no GGUF for this model (pass --gguf)"
    run = [e for e in wanted if e not in skipped]
    for name, why in skipped.items():
        progress(f"skipping {name}: {why}")

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    room = info.context_length - s.new_tokens - 8  # the long prompt must fit with its answer
    prompts = {
        "short": prompt_text(tok, min(s.short_tokens, room)),
        "long": prompt_text(tok, min(s.long_tokens, room)),
    }
    n_prompt = {k: len(tok(v, add_special_tokens=False)["input_ids"]) for k, v in prompts.items()}
    spec = {
        "model_dir": str(model_dir),
        "hf_dir": str(hf_dir) if hf_dir else None,
        "gguf": str(gguf_path) if gguf_path else None,
        "prompts": prompts,
        "settings": asdict(s),
        "properties": dict(properties or {}),
        "device": device,
        "context_length": info.context_length,
    }
    pooled: dict[str, list[EngineResult]] = {name: [] for name in run}
    loads = []
    for r in range(rounds):
        order = run[r % len(run) :] + run[: r % len(run)] if run else []
        for i, name in enumerate(order, 1):
            where = f"round {r + 1}/{rounds}, " if rounds > 1 else ""
            progress(f"[{where}{i}/{len(order)}] {name}: starting its subprocess")
            pooled[name].append(_run_worker(by_label[name], spec, progress))
        loads.append(list(os.getloadavg()))
    results = [_pool(name, rs) for name, rs in pooled.items()]
    _add_ratios(results)
    return BenchResult(
        model=str(model_dir),
        settings={
            **asdict(s),
            "quick": quick,
            "properties": spec["properties"],
            "rounds": rounds,
            "gguf": spec["gguf"],
            "same_gguf": same_gguf,
        },
        machine={
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "bf16": has_bf16(),
            "amx": "amx_tile" in cpu_flags(),
            "load_average_before": load_before,
            "load_average_after": list(os.getloadavg()),
            "load_average_rounds": loads,
        },
        versions=versions(),
        prompts=n_prompt,
        engines=results,
        targets=_targets(results),
        skipped=skipped,
    )


def _gguf_for(model_dir: Path, gguf: str | Path | None, manifest: dict[str, Any]) -> Path | None:
    if gguf:
        p = Path(gguf).expanduser()
        if not p.is_file():
            raise OptionError(f"{p} does not exist", "check the GGUF path", param="gguf")
        return p
    return source_gguf(manifest)


def _pool(name: str, rounds: list[EngineResult]) -> EngineResult:
    """One engine's rounds as one result: every value of every round (a failed round fails
    the engine: its remaining figures would be a biased sample)."""
    bad = next((r for r in rounds if not r.ok), None)
    if bad is not None or len(rounds) == 1:
        return bad or rounds[0]
    metrics = {
        key: summary([v for r in rounds for v in r.metrics[key]["values"]])
        for key in rounds[0].metrics
    }
    info = dict(rounds[-1].info)
    for key in ("generated_tokens",):
        info[key] = [v for r in rounds for v in r.info.get(key, [])]
    return EngineResult(name, True, metrics=metrics, info=info)


def _run_worker(v: Variant, spec: dict[str, Any], progress: Progress) -> EngineResult:
    name = v.label
    with tempfile.TemporaryDirectory(prefix="ovchat-bench-") as tmp:
        out = Path(tmp) / "result.json"
        job = {**spec, "engine": v.engine, "label": v.label, "out": str(out), "tmp": tmp}
        job["properties"] = {**spec["properties"], **v.properties}
        for key in ("model_dir", "gguf"):
            if getattr(v, key):
                job[key] = getattr(v, key)
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from ovchat.bench.worker import worker_main; worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        timer = threading.Timer(WORKER_TIMEOUT_S, proc.kill)
        timer.start()
        last = ""
        try:
            for line in proc.stderr:  # the worker's progress, live
                if line.startswith("ovchat bench:"):
                    progress(line.removeprefix("ovchat bench: ").rstrip())
                elif line.strip():
                    last = line.strip()
            proc.wait()
        finally:
            timer.cancel()
        if proc.returncode != 0 or not out.is_file():
            why = last or f"exit code {proc.returncode}"
            if proc.returncode is not None and proc.returncode < 0:
                why = f"killed by signal {-proc.returncode} ({why})"
            progress(f"{name} failed: {why[:300]}")
            return EngineResult(name, False, why[:500])
        data = json.loads(out.read_text())
        return EngineResult(name, True, metrics=data["metrics"], info=data["info"])


def _add_ratios(results: list[EngineResult]) -> None:
    base = next((r for r in results if r.engine == "ovchat" and r.ok), None)
    if base is None:
        return
    for r in results:
        if not r.ok:
            continue
        for key, m in r.metrics.items():
            b = base.metrics.get(key)
            if b and b["median"] > 0:
                r.ratios[key] = m["median"] / b["median"]


def _targets(results: list[EngineResult]) -> list[dict[str, Any]]:
    """Each target against every engine of that kind (llamacpp: llamacpp-q4_0, ...)."""
    base = next((r for r in results if r.engine == "ovchat" and r.ok), None)
    out = []
    for key, other, want in TARGETS:
        for o in results:
            if base is None or not o.ok or o.engine.split("-q")[0] != other:
                continue
            got = base.metrics[key]["median"] / o.metrics[key]["median"]
            out.append({"metric": key, "against": o.engine, "ovchat_times": got,
                        "target": want, "met": got >= want})  # fmt: skip
    return out

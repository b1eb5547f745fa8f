"""`ovchat bench`: ovchat against the engines a user would pick instead, side by side.

Every engine runs in its own subprocess (so load time and peak RSS are its own and one
engine's threads do not disturb the next) on the same prompts, with the same number of new
tokens (EOS ignored), greedy:
- ovchat: ovchat's Engine (openvino-genai LLMPipeline) on the export;
- seed: optimum-intel OVModelForCausalLM.generate on the same IR, with the seed's ov_config;
- torch-fp32 / torch-bf16: transformers on PyTorch, on the export's HF source (bf16 only
  when the CPU has avx512_bf16 or AMX);
- llamacpp: llama-cpp-python on the model's GGUF, when it is installed.
Figures: load time cold (empty model cache) and warm (OpenVINO model cache filled), TTFT at a
short and a long prompt, prefill tokens/s, decode tokens/s, peak RSS, size on disk; median
and min-max over repetitions, each engine's ratio to ovchat.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import add_report_arguments, properties_from_args, write_json
from .errors import OptionError, OvchatError
from .models import resolve

ENGINES = ("ovchat", "seed", "torch-fp32", "torch-bf16", "llamacpp")
QUICK_ENGINES = ("ovchat", "seed", "torch-fp32")
SEED_OV_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "CACHE_DIR": ""}


@dataclass(frozen=True)
class Settings:
    """How much to measure. `quick` is a smoke run (under a minute for the default model)."""

    short_tokens: int = 32
    long_tokens: int = 1000
    new_tokens: int = 64  # decoded per run, EOS ignored, so every engine decodes as many
    reps: int = 3  # medians of 3 after a warm-up: a full run in ~15 min on 2 cores
    warmups: int = 1
    threads: int = os.cpu_count() or 1  # llama.cpp and torch; OpenVINO uses all cores too


FULL = Settings()
QUICK = Settings(short_tokens=16, long_tokens=128, new_tokens=16, reps=2, warmups=1)
METRICS = (  # key, label, unit, higher is better
    ("load_cold_s", "load cold", "s", False),
    ("load_warm_s", "load warm", "s", False),
    ("ttft_short_ms", "TTFT short", "ms", False),
    ("ttft_long_ms", "TTFT long", "ms", False),
    ("prefill_tps", "prefill", "tok/s", True),
    ("decode_tps", "decode", "tok/s", True),
    ("peak_rss_mb", "peak RSS", "MB", False),
    ("size_mb", "size on disk", "MB", False),
)
# Issue 5's targets (reported, never asserted): ovchat's speed over the engine's.
TARGETS = (
    ("decode_tps", "llamacpp", 1.15),
    ("prefill_tps", "llamacpp", 5.0),
    ("prefill_tps", "torch-fp32", 4.0),
)
WORKER_TIMEOUT_S = 1800
VERSIONED = (
    "openvino", "openvino-genai", "optimum-intel", "transformers", "torch",
    "llama-cpp-python", "nncf",
)  # fmt: skip


def _say(msg: str) -> None:
    print(f"ovchat bench: {msg}", file=sys.stderr, flush=True)


# -- the machine -----------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_bf16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def versions() -> dict[str, str]:
    from .export import versions as installed

    return {"python": platform.python_version(), **installed(VERSIONED)}


def llamacpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


# -- prompts ---------------------------------------------------------------------------------
def prompt_text(tokenizer: Any, n_tokens: int) -> str:
    """About `n_tokens` of deterministic English from CPython's pydoc_data, cut at a word."""
    from .eval import corpus_text

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def engine(self, name: str) -> EngineResult | None:
        return next((e for e in self.engines if e.engine == name and e.ok), None)


# -- the parent ------------------------------------------------------------------------------
def bench(
    model: str | Path | None = None,
    engines: Sequence[str] | None = None,
    quick: bool = False,
    settings: Settings | None = None,
    properties: dict[str, Any] | None = None,
    reference: str | Path | None = None,
    gguf: str | Path | None = None,
    progress: Callable[[str], None] = _say,
) -> BenchResult:
    """Run each engine in a subprocess on the same prompts; return raw figures and ratios."""
    from transformers import AutoTokenizer

    from .engine import read_model_info
    from .eval import reference_dir

    s = settings or (QUICK if quick else FULL)
    load_before = list(os.getloadavg())  # the machine's load says how far to trust timings
    wanted = list(engines or (QUICK_ENGINES if quick else ENGINES))
    unknown = [e for e in wanted if e not in ENGINES]
    if unknown:
        raise OptionError(f"unknown engine(s) {', '.join(unknown)}", f"use {', '.join(ENGINES)}")
    model_dir = resolve(model)
    info = read_model_info(model_dir)
    skipped: dict[str, str] = {}
    hf_dir: Path | None = None
    if any(e.startswith("torch") for e in wanted):
        try:
            hf_dir = reference_dir(model_dir, reference, progress)
        except OvchatError as e:
            skipped.update({e2: str(e) for e2 in wanted if e2.startswith("torch")})
    if "torch-bf16" in wanted and not has_bf16():
        skipped["torch-bf16"] = "the CPU has neither avx512_bf16 nor AMX"
    gguf_path = _gguf_for(model_dir, gguf, info.manifest)
    if "llamacpp" in wanted:
        if not llamacpp_available():
            skipped["llamacpp"] = "llama-cpp-python is not installed (pip install ovchat[llamacpp])"
        elif gguf_path is None:
            skipped["llamacpp"] = "no GGUF for this model (pass --gguf)"
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
        "context_length": info.context_length,
    }
    results = []
    for i, name in enumerate(run, 1):
        progress(f"[{i}/{len(run)}] {name}: starting its subprocess")
        results.append(_run_worker(name, spec, progress))
    _add_ratios(results)
    return BenchResult(
        model=str(model_dir),
        settings={**asdict(s), "quick": quick, "properties": spec["properties"]},
        machine={
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "bf16": has_bf16(),
            "amx": "amx_tile" in cpu_flags(),
            "load_average_before": load_before,
            "load_average_after": list(os.getloadavg()),
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
            raise OptionError(f"{p} does not exist", "check --gguf")
        return p
    src = manifest.get("source") or {}
    if src.get("kind") == "gguf" and Path(str(src.get("model"))).is_file():
        return Path(str(src["model"]))
    return None


def _run_worker(name: str, spec: dict[str, Any], progress: Callable[[str], None]) -> EngineResult:
    with tempfile.TemporaryDirectory(prefix="ovchat-bench-") as tmp:
        out = Path(tmp) / "result.json"
        job = {**spec, "engine": name, "out": str(out), "tmp": tmp}
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from ovchat.bench_worker import worker_main; worker_main()"],
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
    base = next((r for r in results if r.engine == "ovchat" and r.ok), None)
    out = []
    for key, other, want in TARGETS:
        o = next((r for r in results if r.engine == other and r.ok), None)
        if base is None or o is None:
            continue
        got = base.metrics[key]["median"] / o.metrics[key]["median"]
        out.append({"metric": key, "against": other, "ovchat_times": got, "target": want,
                    "met": got >= want})  # fmt: skip
    return out


# -- output ----------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def _cell(e: EngineResult, key: str, dash: str, before_ratio: str) -> str:
    """median (min–max), then ×ratio to ovchat: one format for the terminal and Markdown."""
    m = e.metrics[key]
    cell = _fmt(m["median"])
    if len(m["values"]) > 1:
        cell += f" ({_fmt(m['min'])}{dash}{_fmt(m['max'])})"
    if e.engine != "ovchat" and key in e.ratios:
        cell += f"{before_ratio}×{e.ratios[key]:.2f}"
    return cell


def render_table(r: BenchResult) -> Any:
    from rich.table import Table

    t = Table(title=f"ovchat bench: {Path(r.model).name} on {r.machine['cpu']}, "
              f"{r.machine['cores']} cores (median, min-max; ×: engine / ovchat)")  # fmt: skip
    t.add_column("engine")
    for _, label, unit, _ in METRICS:
        t.add_column(f"{label} {unit}", justify="right")
    for e in r.engines:
        if not e.ok:
            t.add_row(e.engine, f"failed: {e.error}")
            continue
        cells = [_cell(e, key, "-", "\n") for key, *_ in METRICS]
        t.add_row(e.engine, *cells)
    return t


def markdown_table(r: BenchResult) -> str:
    head = "| engine | " + " | ".join(f"{lbl} ({u})" for _, lbl, u, _ in METRICS) + " |"
    lines = [head, "|---|" + "---:|" * len(METRICS)]
    for e in r.engines:
        if not e.ok:
            continue
        cells = [_cell(e, key, "–", " ") for key, *_ in METRICS]
        lines.append(f"| {e.engine} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(r: BenchResult, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [e for e in r.engines if e.ok]
    keys = list(METRICS)
    cols = (len(keys) + 1) // 2
    fig, grid = plt.subplots(2, cols, figsize=(3.2 * cols, 7.0))
    axes = list(grid.flat)[: len(keys)]
    names = [e.engine for e in ok]
    colors = ["#0068b5" if n == "ovchat" else "#9aa5b1" for n in names]
    for ax, (key, label, unit, higher) in zip(axes, keys, strict=True):
        med = [e.metrics[key]["median"] for e in ok]
        lo = [max(0.0, m - e.metrics[key]["min"]) for m, e in zip(med, ok, strict=True)]
        hi = [max(0.0, e.metrics[key]["max"] - m) for m, e in zip(med, ok, strict=True)]
        ax.bar(names, med, color=colors, yerr=[lo, hi], capsize=3)
        ax.set_title(f"{label} ({unit})\n{'higher' if higher else 'lower'} is better", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"{Path(r.model).name} — {r.machine['cpu']}, {r.machine['cores']} cores",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", help="exported model dir (default: SmolLM2-135M-Instruct)")
    p.add_argument("--engines", help=f"comma-separated, from {','.join(ENGINES)} (default: all)")
    p.add_argument("--quick", action="store_true", help="smoke run: fewer reps, short prompts")
    p.add_argument("--reps", type=int, help="timed repetitions per prompt")
    p.add_argument("--new-tokens", type=int, help="tokens decoded per run (EOS ignored)")
    p.add_argument("--long-tokens", type=int, help="long prompt length in tokens")
    p.add_argument("--threads", type=int, help="threads for torch and llama.cpp")
    p.add_argument("--reference", help="HF dir for the PyTorch engines (default: manifest)")
    p.add_argument("--gguf", help="GGUF for llama.cpp (default: the manifest's source)")
    p.add_argument(
        "-p", "--property", action="append", default=[], metavar="KEY=VALUE",
        help="OpenVINO property for the ovchat engine, repeatable",
    )  # fmt: skip
    p.add_argument("--chart", metavar="PNG", help="write a bar chart")
    add_report_arguments(p)


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.console import Console

    s = QUICK if args.quick else FULL
    for key, value in (("reps", args.reps), ("new_tokens", args.new_tokens),
                       ("long_tokens", args.long_tokens), ("threads", args.threads)):  # fmt: skip
        if value is not None:
            if value < 1:
                raise OptionError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
            s = replace(s, **{key: value})
    engines = [e.strip() for e in args.engines.split(",") if e.strip()] if args.engines else None
    r = bench(
        args.model,
        engines,
        quick=args.quick,
        settings=s,
        properties=properties_from_args(args),
        reference=args.reference,
        gguf=args.gguf,
    )
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout, width=max(160, shutil.get_terminal_size().columns))
    console.print(render_table(r))
    console.print(
        f"prompts: {r.prompts['short']} and {r.prompts['long']} tokens; {r.settings['new_tokens']}"
        f" new tokens per run; {r.settings['reps']} reps after {r.settings['warmups']} warm-up",
        highlight=False,
    )
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in r.versions.items()),
                  highlight=False)  # fmt: skip
    for t in r.targets:
        console.print(
            f"target: ovchat {t['metric']} {t['ovchat_times']:.2f}× {t['against']} "
            f"(want ≥ {t['target']}×: {'met' if t['met'] else 'NOT met'})",
            highlight=False,
        )
    for name, why in r.skipped.items():
        console.print(f"skipped {name}: {why}", highlight=False)
    if args.markdown:
        console.print(markdown_table(r), markup=False, highlight=False)
    if args.chart:
        console.print(f"chart: {chart(r, args.chart)}", highlight=False)
    if args.json:
        write_json(r.to_dict(), args.json)
    return 0 if all(e.ok for e in r.engines) else 1

"""Speed of ovchat against other engines (optimum-intel's OVModelForCausalLM path, PyTorch,
llama.cpp), side by side on this machine: load, time to first token, prefill and decode
tokens/s, peak memory, size on disk. Each engine runs in its own subprocess.

With `--image FILE`: what the image costs a vision-language model (bench/vision.py)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any, cast

from ..bench.lookalikes import SHAPES
from ..bench.report import chart, markdown_table, render_table
from ..bench.runner import ENGINES, FULL, QUICK, bench
from ..errors import OptionError
from .cliargs import add_model_arguments, add_report_arguments, properties_from_args, write_json

FLAGS = {"engines": "--engines", "gguf": "--gguf", "reference": "--reference", "shape": "--shape",
         "image": "--image"}  # fmt: skip
# what --image does not combine with (it measures ovchat alone, on one prompt)
NOT_WITH_IMAGE = ("engines", "shape", "gguf", "reference", "chart", "long_tokens", "rounds")
SHAPE_ROUNDS = 3  # --shape: 3 alternating rounds of 1 repetition each


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--engines", help=f"comma-separated, from {','.join(ENGINES)} (default: all)")
    p.add_argument("--quick", action="store_true", help="smoke run: fewer reps, short prompts")
    p.add_argument(
        "--shape",
        help=f"a random-weight model shaped like a real one ({', '.join(SHAPES)}, or a JSON "
        "file): built once into the cache, then ovchat on its fast export and on one with "
        "optimum-intel's int4 recipe against llama.cpp Q4_0 and Q4_K_M of the same weights",
    )
    p.add_argument("--rounds", type=int, help="run every engine this often, alternating")
    p.add_argument("--reps", type=int, help="timed repetitions per prompt (per round)")
    p.add_argument("--new-tokens", type=int, help="tokens decoded per run (EOS ignored)")
    p.add_argument("--long-tokens", type=int, help="long prompt length in tokens")
    p.add_argument("--threads", type=int, help="threads for torch and llama.cpp")
    p.add_argument("--reference", help="HF dir for the PyTorch engines (default: manifest)")
    p.add_argument(
        "--gguf",
        help="a GGUF file: llama.cpp runs it and, without -m, ovchat runs its own import of "
        "it (exported once into the cache); default: the model's source GGUF",
    )
    p.add_argument("--chart", metavar="PNG", help="write a bar chart")
    p.add_argument(
        "--image",
        metavar="FILE",
        help="a vision model with this image: image encoding time, TTFT, decode tok/s and "
        "peak memory, with the image and without",
    )
    add_report_arguments(p)


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.console import Console

    s = QUICK if args.quick else FULL
    if args.image:
        return _image(args, s)
    if args.shape and not args.quick:
        s = replace(s, reps=1)  # the repetitions are the alternating rounds
    rounds = args.rounds or (SHAPE_ROUNDS if args.shape and not args.quick else 1)
    for key, value in (("reps", args.reps), ("new_tokens", args.new_tokens),
                       ("long_tokens", args.long_tokens), ("threads", args.threads),
                       ("rounds", args.rounds)):  # fmt: skip
        if value is not None:
            if value < 1:
                raise OptionError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
            if key != "rounds":
                s = replace(s, **{key: value})
    engines = [e.strip() for e in args.engines.split(",") if e.strip()] if args.engines else None
    model, gguf, variants, shape = args.model, args.gguf, None, cast("dict[str, Any] | None", None)
    if model and str(model).lower().endswith(".gguf"):  # the file itself: both engines on it
        if gguf and Path(gguf).expanduser().resolve() != Path(model).expanduser().resolve():
            raise OptionError(f"two GGUF files given ({model}, {gguf})", "give one",
                              param="gguf")  # fmt: skip
        model, gguf = None, model
    if args.shape:
        from ..bench import lookalikes

        if args.model or args.gguf:
            raise OptionError("--shape builds its own models", "drop -m/--gguf", param="shape")
        from ..bench.machine import llamacpp_available

        # without llama-cpp-python: the OpenVINO exports only (its engines are then skipped)
        built = lookalikes.prepare(lookalikes.get_shape(args.shape), gguf=llamacpp_available())
        model, variants = built.ov("fast"), lookalikes.variants(built)
        shape = {"name": built.shape.name, "real": built.shape.real,
                 "params": built.shape.params, "build_seconds": built.build_seconds}  # fmt: skip
    r = bench(
        model,
        engines,
        quick=args.quick,
        settings=s,
        device=args.device,
        properties=properties_from_args(args),
        reference=args.reference,
        gguf=gguf,
        variants=variants,
        rounds=rounds,
    )
    r.shape = shape
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
    if shape:
        console.print(f"shape {shape['name']} ({shape['params'] / 1e9:.2f} B parameters, "
                      f"random weights, the config of {shape['real']}); built in "
                      + ", ".join(f"{k} {v:.0f}s" for k, v in shape["build_seconds"].items()),
                      highlight=False)  # fmt: skip
    for t in r.targets:
        console.print(
            f"target: ovchat {t['metric']} {t['ovchat_times']:.2f}× {t['against']} "
            f"(want ≥ {t['target']}×: {'met' if t['met'] else 'NOT met'})",
            highlight=False,
        )
    if r.settings.get("gguf") and not r.settings.get("same_gguf") and r.engine("llamacpp"):
        console.print(f"note: llama.cpp ran {r.settings['gguf']}, ovchat ran {r.model}, which "
                      "was not made from that file (bench --gguf FILE alone compares the same "
                      "file)", highlight=False)  # fmt: skip
    for name, why in r.skipped.items():
        console.print(f"skipped {name}: {why}", highlight=False)
    if args.markdown:
        console.print(markdown_table(r), markup=False, highlight=False)
    if args.chart:
        console.print(f"chart: {chart(r, args.chart)}", highlight=False)
    if args.json:
        write_json(r.to_dict(), args.json)
    return 0 if all(e.ok for e in r.engines) else 1


def _image(args: argparse.Namespace, s: Any) -> int:
    """`--image FILE`: the image's cost on a vision model, a table (and --json)."""
    from rich.console import Console
    from rich.table import Table

    from ..bench.vision import bench_image
    from ..progress import printer

    for key in NOT_WITH_IMAGE:
        if getattr(args, key, None):
            flag = "--" + key.replace("_", "-")
            raise OptionError(
                f"{flag} does not go with --image", f"drop {flag}: --image measures ovchat alone",
                param="image",
            )  # fmt: skip
    for key in ("reps", "new_tokens"):
        value = getattr(args, key)
        if value is not None and value < 1:
            raise OptionError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    r = bench_image(
        args.model,
        args.image,
        reps=args.reps or s.reps,
        new_tokens=args.new_tokens or s.new_tokens,
        device=args.device,
        properties=properties_from_args(args),
        progress=printer(),
    )
    console = Console(stderr=args.json == "-")
    t = Table(title=f"ovchat bench --image: {r.model}, {Path(r.image).name} {r.width}x"
              f"{r.height} on {r.machine['cpu']} (median of {r.reps})")  # fmt: skip
    for col in ("", "without the image", "with it"):
        t.add_column(col, justify="right" if col else "left")
    for row in r.rows():
        t.add_row(*row)
    console.print(t)
    console.print(
        f"{r.new_tokens} new tokens per run (EOS ignored); loaded in {r.load_s:.1f} s; "
        f"peak RSS after loading {r.peak_rss_mb['load']:.0f} MB",
        highlight=False,
    )
    if args.json:
        write_json(r.to_dict(), args.json)
    return 0

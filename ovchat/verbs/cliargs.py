"""Command-line options shared by the verbs, and the CLI's own spelling of library errors.

Library errors name the argument at fault (`OvchatError.param`); `cli_hint` turns that into
advice about this command's flags.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..engine import DEFAULT_DEVICE, Completion
from ..errors import OptionError, OvchatError
from ..options import DEFAULT_MAX_NEW_TOKENS, GenerationOptions
from ..paths import portable

# GenerationOptions field → flag, for the verbs that generate.
GENERATION_FLAGS = {
    "max_new_tokens": "-n/--max-new-tokens",
    "temperature": "-t/--temperature",
    "top_p": "--top-p",
    "top_k": "--top-k",
    "min_p": "--min-p",
    "repetition_penalty": "--repetition-penalty",
    "presence_penalty": "--presence-penalty",
    "frequency_penalty": "--frequency-penalty",
    "no_repeat_ngram_size": "--no-repeat-ngram-size",
    "seed": "--seed",
    "stop": "--stop",
    "model": "-m/--model",
    "system": "-s/--system",
    "json_schema": "--json-schema",
    "regex": "--regex",
    "grammar": "--grammar",
}
# Errors whose advice is a whole sentence of flags, not just "see FLAG".
HINTS: dict[str, Callable[[OvchatError], str]] = {
    "device": lambda e: f"{e.hint}; use --device {e.choices[0] if e.choices else 'CPU'}",
    "properties": lambda e: "check the -p KEY=VALUE options",
    "force": lambda e: "pass --force to replace it",
    "group_size_fallback": lambda e: (
        "pass --group-size-fallback adjust (or ignore), or a --group-size that divides the "
        "model's widths"
    ),
}


def cli_hint(e: OvchatError, flags: Mapping[str, str]) -> str | None:
    """The hint for this error on this command line (the library's, plus the flag)."""
    param = e.param or ""
    if param in HINTS:
        return HINTS[param](e)
    flag = flags.get(param)
    if flag:
        return f"{e.hint}; see {flag}" if e.hint else f"see {flag}"
    return e.hint


def add_model_arguments(p: argparse.ArgumentParser, many: bool = False) -> None:
    """-m/--model (repeatable with `many`: `args.model` is then a list or None), -d, -p."""
    p.add_argument(
        "-m",
        "--model",
        action="append" if many else "store",
        help="library name (name or name:tag) or an export's path (default: smollm2)"
        + ("; repeat to serve several" if many else ""),
    )
    p.add_argument("-d", "--device", default=DEFAULT_DEVICE, help="CPU, GPU, GPU.0, NPU, AUTO")
    p.add_argument(
        "-p",
        "--property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="OpenVINO property, repeatable (e.g. -p INFERENCE_PRECISION_HINT=f32)",
    )


def add_prompt_lookup_argument(p: argparse.ArgumentParser) -> None:
    """--prompt-lookup (generate, chat, serve)."""
    p.add_argument(
        "--prompt-lookup",
        action="store_true",
        help="prompt-lookup decoding: faster answers that repeat their prompt (editing, "
        "summarising, code); same greedy answer",
    )


def add_generation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    p.add_argument("-t", "--temperature", type=float, help="0 = greedy (default: the model's)")
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--presence-penalty", type=float)
    p.add_argument("--frequency-penalty", type=float)
    p.add_argument("--no-repeat-ngram-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append", default=[], help="stop string, repeatable")


def add_constraint_arguments(p: argparse.ArgumentParser) -> None:
    """Constrained decoding (genai's structured output): the answer is guaranteed to match."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json-schema", metavar="FILE", help="answer JSON valid for this JSON Schema")
    g.add_argument("--regex", metavar="PATTERN", help="answer text matching this regex")
    g.add_argument("--grammar", metavar="FILE", help="answer text in this EBNF grammar")


def options_from_args(a: argparse.Namespace) -> GenerationOptions:
    """GenerationOptions from the flags `add_generation_arguments` (and
    `add_constraint_arguments`) declared."""
    given = {name: getattr(a, name) for name in GenerationOptions.fields() if hasattr(a, name)}
    given["stop"] = tuple(a.stop)
    for name in ("json_schema", "grammar"):  # these flags name files
        if given.get(name) is not None:
            given[name] = _read_text(given[name], name)
    return GenerationOptions(**{k: v for k, v in given.items() if v is not None})


def _read_text(path: str, param: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise OptionError(f"cannot read {path}: {why}", "check the path", param=param) from e


def properties_from_args(a: argparse.Namespace) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for item in a.property:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(
                f"property {item!r} is not KEY=VALUE", "e.g. -p NUM_STREAMS=1", param="properties"
            )
        props[key.strip()] = value.strip()
    return props


def stats_line(c: Completion, context: tuple[int, int] | None = None) -> str:
    """The short line after an answer (generate --stats, chat): tokens, speed, first token,
    (tokens in context / window), and why it ended when that was not the model's choice."""
    parts = [f"{c.generated_tokens} tokens"]
    if c.tokens_per_second:
        parts.append(f"{c.tokens_per_second:.1f} tok/s")
    if c.ttft is not None:
        parts.append(f"first token {c.ttft * 1000:.0f} ms")
    if context is not None:
        parts.append(f"{context[0]}/{context[1]} in context")
    else:
        parts.append(f"{c.prompt_tokens} prompt tokens")
    if c.finish_reason == "length":
        parts.append("cut at the token limit")
    elif c.finish_reason == "cancelled":
        parts.append("stopped")
    return " · ".join(parts)


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """--json and --markdown, shared by the verbs that report tables (bench, eval)."""
    p.add_argument("--json", nargs="?", const="-", metavar="PATH", help="JSON to stdout or PATH")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table too")


def write_json(data: Any, dest: str) -> None:
    """`--json` output: "-" is stdout (the human-readable report then goes to stderr). Paths
    of this machine are written portably ($OVCHAT_HOME/..., $TMPDIR/..., ~/...)."""
    text = json.dumps(portable(data), indent=2)
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n")


def human_size(n: int | float) -> str:
    """Bytes as people read them: 812 KB, 103 MB, 1.4 GB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 and unit == "GB" else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    """A plain table, columns padded (no colours: it is often piped)."""
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

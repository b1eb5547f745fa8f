"""The `ovchat` command: a dispatcher to one module per verb (ovchat/verbs/); errors become
one line that says what is wrong and which flag to change, exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from .errors import OvchatError

VERBS = {
    "export": "export a model (HF id, HF dir or .gguf) to OpenVINO IR",
    "pull": "export a model into the library, by name",
    "list": "the models in the library",
    "show": "one model's manifest: source, recipe, fidelity, template",
    "rm": "remove models from the library",
    "cp": "another name for a model (no copy of the weights)",
    "generate": "answer one prompt",
    "chat": "chat in the terminal",
    "embed": "vectors for texts, from an embedding model",
    "rerank": "documents ordered by relevance to a query, from a reranker",
    "transcribe": "text from speech (wav, flac, mp3), from a Whisper model",
    "serve": "OpenAI-compatible HTTP server and web chat page",
    "ps": "what running servers hold",
    "bench": "speed against other engines, side by side",
    "eval": "fidelity of an export against its reference",
}
DEBUG_ENV = "OVCHAT_DEBUG"  # set to 1 to see tracebacks


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `verb`'s module is imported (the server's web stack costs ~0.3 s)."""
    parser = _Parser(prog="ovchat", description="Local chat models on OpenVINO.")
    parser.add_argument("--version", action="version", version=f"ovchat {_version()}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name, help_text in VERBS.items():
        if name != verb:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"ovchat.verbs.{name}")
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or "").strip())
        module.add_arguments(p)
        p.set_defaults(_main=module.main, _flags=getattr(module, "FLAGS", {}))
    return parser


def one_line(e: OvchatError, flags: dict[str, str]) -> str:
    """The error with this command's advice: "problem (how to fix it, with the flag)"."""
    from .verbs.cliargs import GENERATION_FLAGS, cli_hint

    hint = cli_hint(e, {**GENERATION_FLAGS, **flags})
    return f"{e.message} ({hint})" if hint else e.message


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ovchat")
    except PackageNotFoundError:
        return "dev"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in VERBS else None)
    args = parser.parse_args(argv)
    if not args.verb:
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except OvchatError as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"ovchat {args.verb}: error: {one_line(e, args._flags)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # the boundary: one line, never a traceback unless asked
        if os.environ.get(DEBUG_ENV):
            raise
        msg = " ".join(str(e).split())[:300] or type(e).__name__
        print(
            f"ovchat {args.verb}: unexpected error: {type(e).__name__}: {msg} "
            f"(set {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())

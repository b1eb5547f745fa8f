"""Chat with a model in the terminal: answers stream as they are generated and every turn sees
the conversation so far. Type /help in the chat for its commands. With stdin from a pipe,
each line is one message and the answers are printed plainly (stats on stderr).
"""

# The loop (commands, turns, history, stats) is `ChatLoop`, which knows nothing about
# terminals; `TerminalUI` (prompt_toolkit + rich) and `PlainUI` (pipes) are its two faces.
# History and context trimming are the Python API's `Conversation` (conversation.py).

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Protocol

from ..conversation import Conversation
from ..engine import check_messages
from ..errors import OptionError, OvchatError
from ..model import Model, load
from .chat_ui import TRIPLE_QUOTE, PlainUI, TerminalUI
from .cliargs import (
    add_generation_arguments,
    add_model_arguments,
    add_prompt_lookup_argument,
    options_from_args,
    properties_from_args,
    stats_line,
)

COMMANDS = {
    "/help": "this list",
    "/reset": "forget the conversation (the system message stays)",
    "/system TEXT": "set the system message (alone: show it)",
    "/save FILE": "write the conversation as a JSON list of messages",
    "/load FILE": "replace the conversation with one saved by /save",
    "/stats": "last answer's first-token time, speed and tokens in context",
    "/image FILE": "attach an image to your next message (vision models)",
    "/exit": "leave (also Ctrl-D, or Ctrl-C at an empty prompt)",
}
KEYS = (
    "Enter sends · Esc then Enter, or a line ending in \\, adds a line · "
    f"{TRIPLE_QUOTE} opens and closes a block",
    "Ctrl-C stops an answer · Ctrl-D leaves · // at the start sends a message beginning with /",
)
EXIT_COMMANDS = ("/exit", "/quit", "/bye")


class UI(Protocol):
    """What the loop needs from a front end."""

    def answer(self, text: str) -> None: ...  # one streamed piece of the answer
    def end_answer(self) -> None: ...
    def info(self, line: str) -> None: ...  # command output
    def notice(self, line: str) -> None: ...  # something the user should notice
    def stats(self, line: str) -> None: ...
    def error(self, line: str) -> None: ...
    def busy(self) -> AbstractContextManager[None]: ...  # around an answer


class ChatLoop:
    """Commands and turns on a Conversation; returns False from `handle` to leave."""

    def __init__(
        self,
        conversation: Conversation,
        ui: UI,
        show_stats: bool = True,
        interactive: bool = True,
    ) -> None:
        self.conv = conversation
        self.ui = ui
        self.show_stats = show_stats
        # Ctrl-C stops an answer and the chat goes on; reading a pipe, it stops everything.
        self.interactive = interactive
        self.errors = 0
        self.images: list[str] = []  # attached by /image, sent with the next message

    def handle(self, line: str) -> bool:
        text = line.strip()
        if not text:
            return True
        if text.startswith("//"):
            self.turn(text[1:])
            return True
        if text.startswith("/"):
            return self.command(text)
        self.turn(text)
        return True

    # -- a turn ------------------------------------------------------------------------------
    def turn(self, text: str) -> None:
        conv = self.conv
        stopped = False
        answered = False
        try:
            images, self.images = self.images, []
            with self.ui.busy(), closing(conv.stream(text, images or None)) as chunks:
                try:
                    for chunk in chunks:
                        if not answered:
                            answered = True
                            if conv.dropped:
                                self.ui.notice(_dropped_notice(conv))
                        if chunk.text:
                            self.ui.answer(chunk.text)
                except KeyboardInterrupt:
                    stopped = True  # closing() stops the generation; the partial answer stays
        except OvchatError as e:
            if answered:
                self.ui.end_answer()
            self._error(str(e))
            return
        except KeyboardInterrupt:
            stopped = True
        if answered:
            self.ui.end_answer()
        if stopped:
            self.ui.notice("(stopped; the partial answer is kept)" if answered else "(stopped)")
        if answered and self.show_stats and conv.last is not None:
            self.ui.stats(self._stats_line())
        if stopped and not self.interactive:
            raise KeyboardInterrupt

    def _stats_line(self) -> str:
        c = self.conv.last
        assert c is not None
        return stats_line(c, (self.conv.context_tokens, self.conv.model.context_length))

    # -- commands ----------------------------------------------------------------------------
    def command(self, text: str) -> bool:
        name, _, arg = text.partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in EXIT_COMMANDS:
            return False
        handler: Callable[[str], None] | None = {
            "/help": self._help,
            "/reset": self._reset,
            "/system": self._system,
            "/save": self._save,
            "/load": self._load,
            "/stats": self._stats,
            "/image": self._image,
        }.get(name)
        if handler is None:
            self._error(f"unknown command {name}; type /help for the list")
        else:
            handler(arg)
        return True

    def _help(self, _: str) -> None:
        width = max(len(c) for c in COMMANDS)
        for cmd, what in COMMANDS.items():
            self.ui.info(f"{cmd.ljust(width)}  {what}")
        for line in KEYS:
            self.ui.info(line)

    def _image(self, arg: str) -> None:
        from ..engine.images import load
        from ..engine.vision import VisionEngine

        if not arg:
            self._error("give an image file: /image photo.png")
            return
        if not isinstance(self.conv.model.engine, VisionEngine):
            self._error(f"{self.conv.model.name} is a text-only model: it does not take images")
            return
        try:
            load(arg, "image")  # checked now, sent with the next message
        except OvchatError as e:
            self._error(str(e))
            return
        self.images.append(arg)
        self.ui.info(f"image attached ({len(self.images)}): it goes with your next message")

    def _reset(self, _: str) -> None:
        self.conv.reset()
        kept = " (the system message is kept)" if self.conv.system else ""
        self.ui.info(f"conversation cleared{kept}")

    def _system(self, arg: str) -> None:
        if not arg:
            current = self.conv.system
            self.ui.info(f"system: {current}" if current else "no system message")
            return
        self.conv.system = arg
        self.ui.info("system message set")

    def _save(self, arg: str) -> None:
        if not arg:
            self._error("/save needs a file name, e.g. /save chat.json")
            return
        path = Path(arg).expanduser()
        try:
            path.write_text(json.dumps(self.conv.messages, indent=2, ensure_ascii=False) + "\n")
        except OSError as e:
            self._error(f"cannot save to {path}: {e.strerror or e}")
            return
        self.ui.info(f"saved {len(self.conv.messages)} messages to {path}")

    def _load(self, arg: str) -> None:
        if not arg:
            self._error("/load needs a file name, e.g. /load chat.json")
            return
        path = Path(arg).expanduser()
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "messages" in data:  # an OpenAI-style request body
                data = data["messages"]
            messages = check_messages(data)
        except OSError as e:
            self._error(f"cannot load {path}: {e.strerror or e}")
            return
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self._error(f"cannot load {path}: not JSON ({e}); the conversation is unchanged")
            return
        except OptionError as e:
            self._error(f"cannot load {path}: {e}; the conversation is unchanged")
            return
        self.conv.messages = messages
        self.ui.info(f"loaded {len(messages)} messages from {path}")

    def _stats(self, _: str) -> None:
        c = self.conv.last
        if c is None:
            self.ui.info("no answer yet")
            return
        ttft = f"{c.ttft * 1000:.0f} ms" if c.ttft is not None else "-"
        tps = f"{c.tokens_per_second:.1f} tok/s" if c.tokens_per_second else "-"
        self.ui.info(
            f"last answer: first token {ttft}, {tps}, {c.generated_tokens} tokens generated "
            f"({c.finish_reason}), prompt {c.prompt_tokens} tokens; "
            f"{self.conv.context_tokens} of {self.conv.model.context_length} tokens in context"
        )

    def _error(self, line: str) -> None:
        self.errors += 1
        self.ui.error(line)


def _dropped_notice(conv: Conversation) -> str:
    n = conv.dropped
    kept = ", the system message kept" if conv.system else ""
    return (
        f"(context full: dropped the {n} oldest message{'s' if n > 1 else ''} to fit "
        f"{conv.model.context_length} tokens{kept})"
    )


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


# -- the verb ----------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("-s", "--system", help="system message")
    p.add_argument("--no-stats", action="store_true", help="no stats line after each answer")
    add_prompt_lookup_argument(p)
    add_generation_arguments(p)


def main(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    props = properties_from_args(args)
    ui: TerminalUI | PlainUI
    if interactive():
        ui = TerminalUI()
        with ui.console.status("loading the model…", spinner="dots"):
            model = load(args.model, args.device, prompt_lookup=args.prompt_lookup, **props)
    else:
        ui = PlainUI()
        model = load(args.model, args.device, prompt_lookup=args.prompt_lookup, **props)
    try:
        if not isinstance(model, Model):
            model.chat()  # an embedding model: raises InvalidModelError saying so
        conv = Conversation(model, system=args.system, options=options)
        return run(conv, ui, show_stats=not args.no_stats)
    finally:
        model.close()


def run(conv: Conversation, ui: TerminalUI | PlainUI, show_stats: bool = True) -> int:
    """The loop over a terminal (exit code 0) or over stdin lines (2 if anything failed)."""
    loop = ChatLoop(conv, ui, show_stats, interactive=isinstance(ui, TerminalUI))
    if isinstance(ui, TerminalUI):
        model = conv.model
        ui.info(
            f"{model.name} on {model.engine.device}, context {model.context_length} tokens. "
            "/help for commands, Ctrl-D to quit."
        )
        for entry in ui.inputs():
            try:
                if not loop.handle(entry):
                    break
            except KeyboardInterrupt:  # during a command: drop it, back to the prompt
                ui.notice("(interrupted)")
        return 0
    for line in sys.stdin:
        if not loop.handle(line.rstrip("\n")):
            break
    return 2 if loop.errors else 0

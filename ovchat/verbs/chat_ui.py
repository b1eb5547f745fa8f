"""The two faces of `ovchat chat`: a terminal (prompt_toolkit for input, rich for output,
word-wrapped streaming) and plain pipes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from rich.cells import cell_len

from ..paths import history_file

PROMPT = ">>> "
CONTINUATION = "... "
PLACEHOLDER = "Send a message (/help for commands)"
TRIPLE_QUOTE = '"""'


class PlainUI:
    """Pipes: answers alone on stdout; notices, stats and errors on stderr; no colours."""

    def answer(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def end_answer(self) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()

    def info(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    notice = stats = error = info

    def busy(self) -> AbstractContextManager[None]:
        return nullcontext()


class TerminalUI:
    """A terminal: prompt_toolkit for input (history, line editing), rich for the rest."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False, soft_wrap=True)
        self._wrap = _WordWrap(sys.stdout.write, lambda: self.console.width)

    def busy(self) -> AbstractContextManager[None]:
        return _no_echo()

    def answer(self, text: str) -> None:
        # Plain writes, not rich: a streamed piece may be half a markdown construct.
        self._wrap.write(text)
        sys.stdout.flush()

    def end_answer(self) -> None:
        self._wrap.end()
        sys.stdout.flush()

    def info(self, line: str) -> None:
        self.console.print(line, markup=False, style="cyan")

    def notice(self, line: str) -> None:
        self.console.print(line, markup=False, style="yellow")

    def stats(self, line: str) -> None:
        self.console.print(line, markup=False, style="dim")
        self.console.print()

    def error(self, line: str) -> None:
        self.console.print(line, markup=False, style="red")

    def inputs(self) -> Iterator[str]:
        """User entries until Ctrl-D or Ctrl-C at an empty prompt."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.formatted_text import HTML
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory

        history: History
        try:
            history_file().parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(history_file()))
        except OSError:
            history = InMemoryHistory()
        session: PromptSession[str] = PromptSession(
            history=history,
            key_bindings=_key_bindings(),
            prompt_continuation=CONTINUATION,
            placeholder=HTML(f"<style fg='#888888'>{PLACEHOLDER}</style>"),
        )
        while True:
            try:
                text = session.prompt(HTML(f"<ansigreen><b>{PROMPT.strip()}</b></ansigreen> "))
            except (EOFError, KeyboardInterrupt):
                return
            yield _unquote(text)


class _WordWrap:
    """Streams text to a terminal, breaking lines between words rather than inside them.

    Hand-written: textwrap and rich wrap whole strings, not a stream of pieces. A word is
    held back until it ends (or grows long), so that it can move to the next line whole.
    """

    LONG_WORD = 24  # cells; longer runs (URLs, CJK text) are written as they come

    def __init__(self, write: Callable[[str], object], width: Callable[[], int]) -> None:
        self._write = write
        self._width = width
        self.col = 0
        self.word = ""

    def write(self, text: str) -> None:
        for ch in text:
            if ch == "\n":
                self._flush()
                self._write("\n")
                self.col = 0
            elif ch.isspace():
                self._flush()
                if self.col < self._width():
                    self._write(ch)
                    self.col += 1
            else:
                self.word += ch
                if cell_len(self.word) >= self.LONG_WORD:
                    self._flush()

    def end(self) -> None:
        self._flush()
        if self.col:
            self._write("\n")
        self.col = 0

    def _flush(self) -> None:
        if not self.word:
            return
        n = cell_len(self.word)
        if self.col and self.col + n > self._width():
            self._write("\n")
            self.col = 0
        self._write(self.word)
        self.col += n
        if self.col > self._width():  # a long word the terminal wrapped itself
            self.col %= max(1, self._width())
        self.word = ""


@contextmanager
def _no_echo() -> Iterator[None]:
    """Keys typed during an answer are not echoed into it (Ctrl-C still interrupts)."""
    import termios

    try:
        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):
        yield
        return
    new = termios.tcgetattr(fd)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, old)


def _key_bindings() -> Any:
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @kb.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("enter")
    def _enter(event: Any) -> None:
        buf = event.current_buffer
        doc = buf.document
        if doc.is_cursor_at_the_end and doc.text.endswith("\\"):
            buf.delete_before_cursor(1)
            buf.insert_text("\n")
        elif doc.text.lstrip().startswith(TRIPLE_QUOTE) and doc.text.count(TRIPLE_QUOTE) % 2:
            buf.insert_text("\n")
        else:
            buf.validate_and_handle()

    @kb.add("c-c")
    def _interrupt(event: Any) -> None:
        if event.current_buffer.text:
            event.current_buffer.reset()  # clear the line, as shells do
        else:
            event.app.exit(exception=KeyboardInterrupt())

    return kb


def _unquote(text: str) -> str:
    s = text.strip()
    if len(s) >= 6 and s.startswith(TRIPLE_QUOTE) and s.endswith(TRIPLE_QUOTE):
        return s[3:-3].strip("\n")
    return text

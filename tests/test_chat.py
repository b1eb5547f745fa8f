"""`ovchat chat`: the real command in a pseudo-terminal (pexpect), and with piped stdin."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest
from conftest import run_cli

from ovchat.engine import Engine

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]")
PROMPT_READY = re.compile(r"Send a message \(/help for commands\)")  # the empty prompt
STATS = re.compile(
    r"first token \S+ ms, \S+ tok/s, (\d+) tokens generated \((\w+)\), prompt (\d+) tokens; "
    r"(\d+) of (\d+) tokens in context"
)
Q1 = "What does the class statement do?"
Q2 = "And the def statement?"
TIMEOUT = 120


def exe() -> str:
    return shutil.which("ovchat", path=str(Path(sys.executable).parent)) or "ovchat"


class Repl:
    """The installed `ovchat chat` in a pseudo-terminal, as a user would drive it."""

    def __init__(self, *args: str, home: Path) -> None:
        env = {
            **os.environ,
            "OVCHAT_HOME": str(home),  # its own input history (tiny models only here)
            "TERM": "xterm-256color",
            "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect does not answer cursor-position requests
        }
        self.child = pexpect.spawn(
            exe(),
            ["chat", *args],
            env=env,
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 120),
        )
        self.child.expect(PROMPT_READY)

    def send(self, line: str) -> str:
        """Type a line, press Enter, wait for the next prompt; what was shown, without escapes."""
        self.child.send(line + "\r")
        self.child.expect(PROMPT_READY)
        return ANSI.sub("", self.child.before).replace("\r", "")

    def stats(self) -> dict[str, int | str]:
        m = STATS.search(self.send("/stats"))
        assert m, "no /stats line"
        gen, reason, prompt, ctx, _ = m.groups()
        return {"generated": int(gen), "reason": reason, "prompt": int(prompt), "context": int(ctx)}

    def save(self, path: Path) -> list[dict[str, str]]:
        out = self.send(f"/save {path}")
        assert f"to {path}" in out
        return json.loads(path.read_text())

    def exit_with(self, key: str) -> int:
        self.child.sendcontrol(key)
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def repl(tmp_path):
    started: list[Repl] = []

    def start(*args: str) -> Repl:
        r = Repl(*args, home=tmp_path / "home")
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


@pytest.fixture(scope="module")
def engine(tiny_llama):
    e = Engine(tiny_llama)
    yield e
    e.close()


@pytest.fixture(scope="module")
def long_llama(tiny_llama, tmp_path_factory) -> Path:
    """The tiny model told its window is 4096 tokens (its RoPE has no limit), so that an answer
    runs long enough to be interrupted: within 256 tokens it ends before a key can stop it."""
    path = Path(shutil.copytree(tiny_llama, tmp_path_factory.mktemp("chat") / "long"))
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "max_position_embeddings": 4096}))
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


def test_two_turns_second_prompt_holds_the_first(repl, tiny_llama, engine, tmp_path):
    r = repl("--model", str(tiny_llama), "-n", "16", "-t", "0")
    shown1 = r.send(Q1)
    first = r.stats()
    shown2 = r.send(Q2)
    second = r.stats()
    saved = r.save(tmp_path / "conv.json")
    assert [m["role"] for m in saved] == ["user", "assistant", "user", "assistant"]
    assert saved[0]["content"] == Q1 and saved[2]["content"] == Q2
    # what was streamed on screen is what the history keeps
    assert flat(saved[1]["content"]) in flat(shown1)
    assert flat(saved[3]["content"]) in flat(shown2)
    # turn 2's prompt, as the engine counted it, is the whole conversation through the
    # template, not the second question alone
    assert first["prompt"] == len(engine.prompt_ids(saved[:1]))
    assert second["prompt"] == len(engine.prompt_ids(saved[:3]))
    assert second["prompt"] > len(engine.prompt_ids(saved[2:3])) + first["generated"]
    assert second["context"] == second["prompt"] + second["generated"]
    assert "tok/s" in shown2 and "in context" in shown2  # the stats line after each answer
    assert r.exit_with("d") == 0


def test_ctrl_c_stops_the_answer_keeps_it_then_next_turn(repl, long_llama, tmp_path):
    r = repl("--model", str(long_llama), "-n", "4000", "-t", "0")
    r.child.send(Q1 + "\r")
    r.child.expect(r"\x1b\[\?2004l")  # prompt_toolkit hands the terminal back: answer starts
    r.child.expect(r"[^\x1b\r\n]{20}")  # some of the answer is on screen
    r.child.sendintr()
    r.child.expect(PROMPT_READY)
    assert "stopped; the partial answer is kept" in ANSI.sub("", r.child.before)
    stopped = r.stats()
    assert stopped["reason"] == "cancelled"
    # really stopped: far below the 4000 asked (a cancel that only hid the text would not be)
    assert 0 < stopped["generated"] < 2000
    shown = r.send(Q2)  # the next turn works, on top of the partial answer
    saved = r.save(tmp_path / "conv.json")
    assert [m["role"] for m in saved] == ["user", "assistant", "user", "assistant"]
    assert saved[1]["content"]  # the partial answer is in the history
    after = r.stats()
    # A whole answer (not cancelled): it runs to the budget or to the model's own end, which
    # for this random model depends on where Ctrl-C cut the first answer.
    assert after["reason"] in ("length", "stop") and after["generated"] > 0
    assert after["prompt"] > stopped["prompt"] + stopped["generated"]  # the partial answer
    assert flat(saved[3]["content"])[:200] in flat(shown)
    assert r.exit_with("c") == 0  # Ctrl-C at an empty prompt leaves cleanly


def test_commands_reset_save_load_unknown(repl, tiny_llama, engine, tmp_path):
    r = repl("--model", str(tiny_llama), "-n", "8", "-t", "0", "--system", "Be brief.")
    r.send(Q1)
    a = r.save(tmp_path / "a.json")
    assert [m["role"] for m in a] == ["system", "user", "assistant"]

    out = r.send("/bogus")
    shown = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith(">>>")]
    assert shown == ["unknown command /bogus; type /help for the list"]  # one line
    assert r.save(tmp_path / "b.json") == a

    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "roles.json").write_text('[{"role": "wizard", "content": "x"}]')
    for bad in ("bad.json", "roles.json", "missing.json"):
        out = r.send(f"/load {tmp_path / bad}")
        assert f"cannot load {tmp_path / bad}" in out and "Traceback" not in out
    assert r.save(tmp_path / "c.json") == a

    r.send("/reset")
    assert r.save(tmp_path / "d.json") == [{"role": "system", "content": "Be brief."}]

    r.send(f"/load {tmp_path / 'a.json'}")
    assert r.save(tmp_path / "e.json") == a  # the round trip
    r.send(Q2)  # the loaded conversation is what the next turn sees
    assert r.stats()["prompt"] == len(engine.prompt_ids([*a, {"role": "user", "content": Q2}]))

    r.send("/system Answer in French.")
    assert r.save(tmp_path / "f.json")[0] == {"role": "system", "content": "Answer in French."}
    help_text = r.send("/help")
    for cmd in ("/reset", "/system", "/save", "/load", "/stats", "/exit"):
        assert cmd in help_text
    r.child.send("/exit\r")
    r.child.expect(pexpect.EOF)
    r.child.close()
    assert r.child.exitstatus == 0


def test_multiline_input(repl, tiny_llama, tmp_path):
    r = repl("--model", str(tiny_llama), "-n", "4", "-t", "0")
    r.child.send("first line \\\r")  # a trailing backslash continues
    r.child.send("second line\r")
    r.child.expect(PROMPT_READY)
    r.child.send('"""\r')  # a triple-quoted block
    r.child.send("a\r")
    r.child.send('b"""\r')
    r.child.expect(PROMPT_READY)
    r.child.send("x")
    r.child.send("\x1b\r")  # Esc then Enter: a new line
    r.child.send("y\r")
    r.child.expect(PROMPT_READY)
    users = [m["content"] for m in r.save(tmp_path / "m.json") if m["role"] == "user"]
    assert users == ["first line \nsecond line", "a\nb", "x\ny"]
    # prompt_toolkit's file history keeps each entry whole, for the up arrow next time
    history = (tmp_path / "home" / "chat_history").read_text()
    assert "+first line \n+second line" in history and "+x\n+y" in history


def test_piped_stdin_one_turn_per_line(tiny_llama, tmp_path):
    conv = tmp_path / "conv.json"
    r = run_cli("chat", "-m", str(tiny_llama), "-n", "12", "-t", "0",
                input=f"{Q1}\n\n{Q2}\n/save {conv}\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    saved = json.loads(conv.read_text())
    assert [m["content"] for m in saved if m["role"] == "user"] == [Q1, Q2]
    answers = [m["content"] for m in saved if m["role"] == "assistant"]
    # stdout is the answers and nothing else: no prompt, no colour, no banner
    assert r.stdout == "".join(a + "\n" for a in answers)
    assert "\x1b" not in r.stdout + r.stderr
    assert len(re.findall(r"tok/s", r.stderr)) == 2  # a stats line per answer, on stderr

    quiet = run_cli("chat", "-m", str(tiny_llama), "-n", "12", "-t", "0", "--no-stats",
                    input=f"{Q1}\n")  # fmt: skip
    assert quiet.returncode == 0 and quiet.stdout == answers[0] + "\n"
    assert "tok/s" not in quiet.stderr


def test_piped_errors_are_one_line_and_the_chat_goes_on(tiny_llama, tmp_path):
    conv = tmp_path / "conv.json"
    too_long = "word " * 400  # longer than the whole 256-token window
    r = run_cli("chat", "-m", str(tiny_llama), "-n", "8", "-t", "0", "--no-stats",
                input=f"/nope\n{too_long}\n{Q1}\n/save {conv}\n")  # fmt: skip
    assert r.returncode == 2  # something failed: a script can tell
    errors = r.stderr.strip().splitlines()
    assert any("unknown command /nope" in e for e in errors)
    assert any("context window is 256" in e for e in errors)
    assert "Traceback" not in r.stderr
    saved = json.loads(conv.read_text())
    assert [m["content"] for m in saved if m["role"] == "user"] == [Q1]


def test_context_trimming_notice(tiny_llama, engine, tmp_path):
    conv = tmp_path / "conv.json"
    lines = [f"{i}: explain what this Python statement does, with an example." for i in range(6)]
    r = run_cli("chat", "-m", str(tiny_llama), "-n", "48", "-t", "0", "-s", "Be brief.",
                input="\n".join([*lines, f"/save {conv}"]) + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    notices = [ln for ln in r.stderr.splitlines() if "context full" in ln]
    assert notices, r.stderr
    assert all("the system message kept" in n and "256 tokens" in n for n in notices)
    saved = json.loads(conv.read_text())
    assert saved[0] == {"role": "system", "content": "Be brief."}
    users = [m["content"] for m in saved if m["role"] == "user"]
    assert users == lines[-len(users) :] and len(users) < len(lines)  # oldest dropped first
    assert len(r.stdout.strip().splitlines()) >= len(lines)  # every line got its answer
    # what remains fits in the window with room for the next answer's budget
    assert len(engine.prompt_ids(saved)) <= 256

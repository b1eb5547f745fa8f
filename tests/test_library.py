"""The model library through the real CLI: pull, list, show, cp, rm, ps, names with tags,
pull on first use, close matches, held models, the default model's old dir, and a library
on a read-only or full disk."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import run_cli, run_main

import ovchat
from ovchat.library.held import Registration, running_servers, servers_dir

TINY_RECIPE = ("--group-size", "16", "--ratio", "1.0")  # tiny widths: int4 really applied


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """One library for the module (pulls are exports: seconds each); its own OVCHAT_HOME."""
    home = tmp_path_factory.mktemp("library-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVCHAT_HOME", str(home))
        yield home


def one_error_line(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def listing(capsys) -> dict[str, dict]:
    r = run_main(capsys, "list", "--json")
    assert r.returncode == 0, r.stderr
    return {row["name"]: row for row in json.loads(r.stdout)}


def test_pull_names_a_model_that_every_verb_finds(lib, tiny_llama_hf, capsys):
    r = run_main(capsys, "pull", str(tiny_llama_hf), "tiny", *TINY_RECIPE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "tiny:int4" and "step 2/3" in r.stderr
    row = listing(capsys)["tiny:int4"]
    assert (row["kind"], row["context_length"], row["recipe"]) == ("chat", 256, "int4 sym g16 r1.0")
    assert row["default"] and row["in_library"] and row["size_bytes"] > 100_000
    assert Path(row["path"]).parent == lib / "models"
    r = run_main(capsys, "generate", "hi", "-m", "tiny", "-n", "3", "-t", "0", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["generated_tokens"] == 3, r.stderr
    with ovchat.load("tiny:int4") as model:
        assert model.path == Path(row["path"]) and model.context_length == 256
    shown = json.loads(run_main(capsys, "show", "tiny", "--json").stdout)
    assert shown["source"] == {"kind": "dir", "model": str(tiny_llama_hf.resolve())}
    assert shown["recipe_asked"]["group_size"] == 16 and shown["recipe_applied"]["weights_by_type"]
    assert "<|start_header_id|>" in shown["chat_template"] and shown["fidelity"] is None
    text = run_main(capsys, "show", "tiny").stdout
    assert "int4 sym g16 r1.0" in text and "not measured" in text


def test_a_recipe_tag_is_pulled_on_first_use(lib, capsys):
    r = run_main(capsys, "generate", "hi", "-m", "tiny:int8", "-n", "2", "-t", "0")
    assert r.returncode == 0, r.stderr
    assert "first use of tiny:int8: pulling it from" in r.stderr
    rows = listing(capsys)
    assert rows["tiny:int8"]["recipe"] == "int8" and not rows["tiny:int8"]["default"]
    r = run_main(capsys, "generate", "hi", "-m", "tiny:int8", "-n", "2", "-t", "0")
    assert r.returncode == 0 and "first use" not in r.stderr  # pulled once
    assert ovchat.resolve("tiny") == Path(rows["tiny:int4"]["path"])  # the default tag


def test_two_first_uses_at_once_make_one_export(lib):
    said: list[list[str]] = [[], []]
    paths: list[Path] = []

    def use(i: int) -> None:
        paths.append(ovchat.resolve("tiny:fp16", progress=said[i].append))

    threads = [threading.Thread(target=use, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(paths) == 2 and paths[0] == paths[1]
    assert sum(any(m.startswith("done in") for m in s) for s in said) == 1, said


def test_mistakes_are_one_line(lib, tiny_llama_hf, capsys):
    line = one_error_line(run_main(capsys, "generate", "hi", "-m", "tinny"), "no model named")
    assert "tiny" in line.split("close:")[1]
    one_error_line(run_main(capsys, "generate", "hi", "-m", "tiny:q5"), "close:", "tiny:int4")
    one_error_line(
        run_main(capsys, "pull", str(tiny_llama_hf), "tiny:int8", "--weight-format", "int4"),
        "names the int8 recipe", "--weight-format",
    )  # fmt: skip
    one_error_line(run_main(capsys, "pull", str(tiny_llama_hf), "tiny"), "already", "--force")
    one_error_line(run_main(capsys, "pull", str(tiny_llama_hf), "Bad Name"), "not a valid")
    one_error_line(run_main(capsys, "rm", "-y", "./some/dir"), "is a path")
    one_error_line(run_main(capsys, "show", "nothing-here"), "no model named")


def test_cp_is_an_alias_and_rm_deletes_only_the_last_name(lib, tiny_llama, capsys, monkeypatch):
    r = run_main(capsys, "cp", "tiny", "chat")
    assert r.returncode == 0 and r.stdout.strip() == "chat:int4 → tiny:int4", r.stderr
    rows = listing(capsys)
    assert rows["chat:int4"]["alias_of"] == "tiny:int4"
    assert rows["chat:int4"]["path"] == rows["tiny:int4"]["path"]
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("n\n"))
    one_error_line(run_main(capsys, "rm", "chat"), "not removed", "-y")
    assert "also tiny:int4" in capsys.readouterr().err or "chat:int4" in listing(capsys)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("y\n"))
    r = run_main(capsys, "rm", "chat")
    assert r.returncode == 0 and "its export stays: tiny:int4" in r.stdout, r
    assert Path(rows["tiny:int4"]["path"]).is_dir() and "chat:int4" not in listing(capsys)
    # An export outside the library joins it by name; rm never deletes it.
    r = run_main(capsys, "cp", str(tiny_llama), "outside")
    assert r.returncode == 0, r.stderr
    assert listing(capsys)["outside:int4"]["in_library"] is False
    r = run_main(capsys, "rm", "-y", "outside")
    assert r.returncode == 0 and "stays" in r.stdout and (tiny_llama / "ovchat.json").is_file()


def test_rm_refuses_a_model_a_server_holds(lib, capsys):
    path = Path(listing(capsys)["tiny:int8"]["path"])
    reg = Registration(url="http://127.0.0.1:1/")
    try:
        reg.update([{"id": "tiny:int8", "dir": str(path), "kind": "chat", "state": "loaded"}])
        one_error_line(run_main(capsys, "rm", "-y", "tiny:int8"), "held by a running server",
                       f"pid {os.getpid()}")  # fmt: skip
        assert path.is_dir() and "tiny:int8" in listing(capsys)
        r = run_main(capsys, "ps")
        assert r.returncode == 0 and "tiny:int8" in r.stdout and "loaded" in r.stdout
    finally:
        reg.close()
    # A record left by a server that died (no lock held) is ignored and cleaned up.
    stale = servers_dir() / "999999-dead.json"
    stale.write_text(json.dumps({"pid": 999999, "models": [{"dir": str(path)}]}))
    assert running_servers() == [] and not stale.exists()
    r = run_main(capsys, "rm", "-y", "tiny:int8")
    assert r.returncode == 0 and "freed" in r.stdout, r
    assert not path.exists() and "tiny:int8" not in listing(capsys)


def test_real_command_lists_the_library(lib):
    r = run_cli("list", env={"OVCHAT_HOME": str(lib)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["NAME", "KIND", "SIZE", "RECIPE", "CONTEXT",
                                                 "CREATED"]  # fmt: skip
    assert any(ln.startswith("tiny:int4 *") for ln in r.stdout.splitlines())


def test_default_model_dir_of_earlier_versions_is_adopted(tmp_path, tiny_llama, monkeypatch):
    from ovchat.library import DEFAULT_GENERATION, default_model_dir

    monkeypatch.setenv("OVCHAT_HOME", str(tmp_path))
    old = default_model_dir()  # where versions before the library prepared it
    shutil.copytree(tiny_llama, old)
    manifest = json.loads((old / "ovchat.json").read_text())
    manifest["generation_overrides"] = DEFAULT_GENERATION
    (old / "ovchat.json").write_text(json.dumps(manifest))
    manifest["recipe"]["asked"]["weight_format"] = "int4"
    (old / "ovchat.json").write_text(json.dumps(manifest))
    said: list[str] = []
    assert ovchat.resolve("smollm2:int4", progress=said.append) == old and not said  # no export
    entry = json.loads((tmp_path / "models/library/smollm2/int4.json").read_text())
    # stored relative; no longer the default tag (the GGUF's own blocks are, smollm2:gguf)
    assert entry["dir"] == old.name and entry["default"] is False


@contextlib.contextmanager
def small_disk(path: Path, size: str, read_only: bool = False):
    """A tmpfs at `path` (needs root and mount); skips the test where it cannot be made."""
    path.mkdir()
    opts = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


def test_read_only_library_is_one_line(tmp_path, tiny_llama_hf, capsys, monkeypatch):
    home = tmp_path / "ro"
    if os.geteuid() != 0:  # permissions bind a normal user: no mount needed
        home.mkdir()
        home.chmod(0o555)
        ctx: contextlib.AbstractContextManager = contextlib.nullcontext(home)
    else:
        ctx = small_disk(home, "1m", read_only=True)
    with ctx:
        monkeypatch.setenv("OVCHAT_HOME", str(home))
        r = run_main(capsys, "pull", str(tiny_llama_hf), "x")
        one_error_line(r, "cannot pull a model in the model library", str(home))
        assert "read-only" in r.stderr or "permission denied" in r.stderr


def test_full_library_disk_is_one_line_and_leaves_nothing(tmp_path, tiny_llama_hf, capsys,
                                                          monkeypatch):  # fmt: skip
    with small_disk(tmp_path / "full", "256k") as home:
        monkeypatch.setenv("OVCHAT_HOME", str(home))
        r = run_main(capsys, "pull", str(tiny_llama_hf), "x", "--weight-format", "fp32")
        one_error_line(r, "the disk is full")
        models = home / "models"
        assert not [p for p in models.iterdir() if p.name.startswith(("x-", ".x-"))]
        assert "x:fp32" not in listing(capsys)

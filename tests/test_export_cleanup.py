"""An export never leaves its hidden work dir behind: not when it fails, and not
when it is killed (the next export to the same place removes it), while the work dir of an
export still running is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from ovchat.convert.export import export
from ovchat.convert.recipe import Recipe
from ovchat.convert.workdir import LOCK_SUFFIX, remove_leftovers
from ovchat.errors import OvchatError

WAIT_SECONDS = 300


def leftovers(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


def test_a_killed_export_is_cleaned_up_by_the_next(tiny_llama_hf, tmp_path):
    out = tmp_path / "model"
    exe = str(Path(sys.executable).parent / "ovchat")
    proc = subprocess.Popen(
        [exe, "export", str(tiny_llama_hf), str(out), "--weight-format", "fp16"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + WAIT_SECONDS
        while "step 2/3" not in proc.stderr.readline():  # converting: the work dir is in use
            assert proc.poll() is None and time.monotonic() < deadline, "export never started"
        work = [p for p in leftovers(out) if not p.name.endswith(LOCK_SUFFIX)]
        assert len(work) == 1 and work[0].is_dir()
        # the owner is alive: another export's sweep leaves its dir alone
        assert remove_leftovers(out) == [] and work[0].is_dir()
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert work[0].is_dir() and not out.exists()  # what a SIGKILL leaves
    export(str(tiny_llama_hf), out, Recipe(weight_format="fp16"), progress=lambda s: None)
    assert (out / "openvino_model.xml").is_file()
    assert leftovers(out) == []  # the dead export's dir and lock are gone, and ours


def test_a_live_owner_keeps_its_work_dir(tmp_path):
    out = tmp_path / "model"
    work = tmp_path / f".{out.name}.partial-123-abcd"
    (work / "ir").mkdir(parents=True)
    held = FileLock(str(work) + LOCK_SUFFIX)
    held.acquire()  # another owner (a separate lock handle, as another process would hold)
    try:
        assert remove_leftovers(out) == [] and work.is_dir()
    finally:
        held.release()
    assert remove_leftovers(out) == [work]
    assert leftovers(out) == []


def test_old_copies_of_dead_replacements_are_removed(tmp_path):
    out = tmp_path / "model"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = tmp_path / f".{out.name}.old-{dead.stdout.strip()}"
    mine = tmp_path / f".{out.name}.old-{os.getpid()}"  # a live process's: kept
    gone.mkdir()
    mine.mkdir()
    assert remove_leftovers(out) == [gone]
    assert mine.is_dir() and not gone.exists()


def test_a_failed_export_leaves_nothing(tmp_path):
    src = tmp_path / "not-a-model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    out = tmp_path / "model"
    with pytest.raises(OvchatError):
        export(str(src), out, Recipe(weight_format="fp16"), progress=lambda s: None)
    assert not out.exists() and leftovers(out) == []

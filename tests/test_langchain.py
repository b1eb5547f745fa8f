"""A framework client nobody here wrote: LangChain's ChatOpenAI (with_structured_output,
bind_tools, a tool loop, the Responses API) against a real server on the default model.

LangChain is not an ovchat dependency (langchain-openai brings ~25 packages): it lives in a
venv of its own, made once per test home from clients/langchain-requirements.txt (needs
PyPI); without it the test is skipped. OVCHAT_LANGCHAIN_PYTHON points at another one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_HOME
from test_serve import ServerThread

from ovchat import Engine
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

pytestmark = pytest.mark.real
CLIENTS = Path(__file__).parent / "clients"


@pytest.fixture(scope="module")
def langchain_python() -> Path:
    given = os.environ.get("OVCHAT_LANGCHAIN_PYTHON")
    if given:
        return Path(given)
    venv = TEST_HOME / "langchain-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        reqs = str(CLIENTS / "langchain-requirements.txt")
        if made.returncode or subprocess.run([*pip, "-r", reqs], capture_output=True).returncode:
            subprocess.run(["rm", "-rf", str(venv)])
            pytest.skip("langchain-openai could not be installed (no PyPI?)")
    return python


@pytest.fixture(scope="module")
def server(smollm2: Path) -> Iterator[ServerThread]:
    engine = Engine(smollm2, backend="batching", max_num_seqs=4)
    with ServerThread(create_app(Settings(max_running=4), engine)) as s:
        yield s
    engine.close()


def test_langchain_chat_openai(server, langchain_python):
    model = server.client().models.list().data[0].id
    r = subprocess.run(
        [str(langchain_python), str(CLIENTS / "langchain_client.py"), f"{server.url}/v1", model],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("structured", "structured_tools"):
        p = out[key]
        assert set(p) == {"name", "age", "role"} and 0 <= p["age"] <= 150
        assert p["role"] in ("admin", "user", "guest")
    for key in ("tool_calls", "streamed_tool_calls"):
        (call,) = out[key]
        assert call["name"] == "GetWeather" and isinstance(call["args"]["city"], str)
    assert isinstance(out["answer"], str) and out["answer"]
    assert isinstance(out["responses"], str) and out["responses"]

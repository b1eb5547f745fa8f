"""`ovchat pull ollama:NAME[:TAG]`: a model of the local Ollama store imported without a
download, from a store laid out as Ollama lays it out (manifests + sha256 blobs), built here
from the shipped GGUF."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import run_cli, run_main


def _store(root: Path, gguf: Path, name: str = "smol", tag: str = "q4", size: int | None = None):
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    blob = root / "blobs" / f"sha256-{digest}"
    if not blob.exists():
        os.symlink(gguf, blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.template",
                "digest": "sha256:" + "1" * 64,
                "size": 10,
            },
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{digest}",
                "size": gguf.stat().st_size if size is None else size,
            },
        ],
    }
    m = root / "manifests" / "registry.ollama.ai" / "library" / name / tag
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_text(json.dumps(manifest))
    return root


def test_no_store_is_one_clear_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "nowhere"))
    r = run_main(capsys, "pull", "ollama:smol")
    assert r.returncode == 2
    assert "no Ollama model store" in r.stderr and "OLLAMA_MODELS" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2 and "Traceback" not in r.stderr


def test_missing_model_names_what_the_store_has(capsys, monkeypatch, tmp_path, smollm2_gguf):
    monkeypatch.setenv("OLLAMA_MODELS", str(_store(tmp_path / "store", smollm2_gguf)))
    r = run_main(capsys, "pull", "ollama:llama3.2:1b")
    assert r.returncode == 2
    assert "llama3.2:1b is not in the Ollama store" in r.stderr and "smol:q4" in r.stderr


def test_incomplete_blob_is_refused(capsys, monkeypatch, tmp_path, smollm2_gguf):
    store = _store(tmp_path / "store", smollm2_gguf, size=smollm2_gguf.stat().st_size + 1)
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    r = run_main(capsys, "pull", "ollama:smol:q4")
    assert r.returncode == 2 and "incomplete" in r.stderr


@pytest.mark.gguf
def test_pull_imports_the_stores_gguf(tmp_path, smollm2_gguf):
    store = _store(tmp_path / "store", smollm2_gguf)
    env = {"OLLAMA_MODELS": str(store), "OVCHAT_HOME": str(tmp_path / "home")}
    r = run_cli("pull", "ollama:smol:q4", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "smol:gguf"
    assert "route: openvino-genai" in r.stderr
    shown = run_cli("show", "smol", "--json", env=env)
    m = json.loads(shown.stdout)
    assert m["source"]["kind"] == "gguf" and m["source"]["route"] == "openvino-genai"
    assert Path(m["source"]["model"]).resolve() == smollm2_gguf.resolve()
    out = run_cli("generate", "-m", "smol", "-n", "8", "-t", "0", "What is 2+2?", env=env)
    assert out.returncode == 0 and out.stdout.strip(), out.stderr

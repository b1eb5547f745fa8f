"""The server's rerank and speech endpoints: /v1/rerank (and the paths other rerank clients
use) and OpenAI's /v1/audio/transcriptions and /v1/audio/translations, through the same
pool, guard, admission and metrics as the other kinds; the official `openai` client for
the audio endpoints."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest
from test_rerank import DOCS, QUERY
from test_serve import ServerThread
from test_speech import tone, write

from ovchat.audio import SAMPLE_RATE
from ovchat.engine.reranker import Reranker
from ovchat.engine.transcriber import Transcriber
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app
from ovchat.serve.settings import ModelSpec

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server(tiny_reranker, tiny_whisper, tiny_llama):
    specs = (ModelSpec("reranker", tiny_reranker), ModelSpec("whisper", tiny_whisper),
             ModelSpec("llama", tiny_llama))  # fmt: skip
    settings = Settings(models=specs, max_loaded=3, kv_cache_gb=1,
                        properties={**F32, "CACHE_DIR": ""})  # fmt: skip
    with ServerThread(create_app(settings)) as s:
        yield s


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    return write(d / "tone.wav", tone(880.0, rate=22_050), 22_050)


def test_models_show_the_kinds(server):
    cards = {m["id"]: m for m in httpx.get(f"{server.url}/v1/models").json()["data"]}
    assert {k: c["kind"] for k, c in cards.items()} == {
        "reranker": "rerank", "whisper": "speech", "llama": "chat",
    }  # fmt: skip


def test_rerank_shape_scores_and_paths(server, tiny_reranker):
    want = Reranker(tiny_reranker, properties=F32).rerank(QUERY, DOCS)
    before = server.metrics().get("ovchat_reranked_documents_total", 0.0)
    r = httpx.post(f"{server.url}/v1/rerank", json={"model": "reranker", "query": QUERY,
                                                    "documents": DOCS})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "reranker" and body["usage"]["total_tokens"] == want.tokens
    assert [x["index"] for x in body["results"]] == [w.index for w in want.results]
    assert np.allclose([x["relevance_score"] for x in body["results"]],
                       [w.score for w in want.results], atol=1e-5)  # fmt: skip
    assert all("document" not in x for x in body["results"])
    # Cohere's and Jina's document objects, top_n, return_documents; other clients' paths.
    objs = [{"text": d} for d in DOCS]
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        r = httpx.post(
            f"{server.url}{path}",
            json={"query": QUERY, "documents": objs, "top_n": 2, "return_documents": True},
        )
        results = r.json()["results"]
        assert [x["index"] for x in results] == [w.index for w in want.results[:2]], path
        assert results[0]["document"] == {"text": DOCS[want.results[0].index]}
    assert server.metrics()["ovchat_reranked_documents_total"] == before + 4 * len(DOCS)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": QUERY, "documents": []}, "documents"),
        ({"query": QUERY, "documents": ["ok", ""]}, "documents"),
        ({"query": "", "documents": DOCS}, "query"),
        ({"query": QUERY, "documents": DOCS, "top_n": 0}, "top_n"),
        ({"documents": DOCS}, "query"),
        ({"query": QUERY, "documents": ["x", "word " * 400]}, "documents"),
    ],
)
def test_rerank_bad_requests_name_the_field(server, body, param):
    r = httpx.post(f"{server.url}/v1/rerank", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_each_kind_refuses_the_others_endpoints(server, wav):
    r = httpx.post(f"{server.url}/v1/rerank", json={"model": "llama", "query": "q",
                                                    "documents": ["d"]})  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_supported"
    assert "chat model" in r.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(model="reranker", messages=USER, max_tokens=2)
    assert "rerank model" in e.value.message and "/v1/rerank" in e.value.message
    with pytest.raises(openai.BadRequestError) as e, wav.open("rb") as f:
        server.client().audio.transcriptions.create(model="reranker", file=f)
    assert e.value.param == "model" and "/v1/rerank" in e.value.message


def test_transcriptions_every_format_with_the_openai_client(server, wav, tiny_whisper):
    from ovchat.audio import read_audio

    want = Transcriber(tiny_whisper, properties=F32).transcribe(
        read_audio(wav).samples, language="en", timestamps=False
    )
    client = server.client()
    with wav.open("rb") as f:
        r = client.audio.transcriptions.create(model="whisper", file=f, language="en")
    assert r.text == want.text
    with wav.open("rb") as f:
        text = client.audio.transcriptions.create(model="whisper", file=f, language="en",
                                                  response_format="text")  # fmt: skip
    assert text.strip() == want.text.strip()
    with wav.open("rb") as f:
        v = client.audio.transcriptions.create(model="whisper", file=f, language="en",
                                               response_format="verbose_json",
                                               timestamp_granularities=["segment"])  # fmt: skip
    assert v.language == "en" and v.duration == pytest.approx(2.0) and v.segments
    assert all(s.end >= s.start for s in v.segments)
    for fmt, head in (("srt", "1\n00:00:"), ("vtt", "WEBVTT\n\n00:00:")):
        with wav.open("rb") as f:
            out = client.audio.transcriptions.create(model="whisper", file=f, language="en",
                                                     response_format=fmt)  # fmt: skip
        assert out.startswith(head) and " --> " in out, out
    assert server.metrics()["ovchat_transcribed_audio_seconds_total"] >= 2.0 * 5


def test_translations(server, wav, tiny_whisper):
    from ovchat.audio import read_audio

    want = Transcriber(tiny_whisper, properties=F32).transcribe(
        read_audio(wav).samples, task="translate"
    )
    with wav.open("rb") as f:
        r = server.client().audio.translations.create(model="whisper", file=f)
    assert r.text == want.text


def test_audio_bad_requests_name_the_field(server, wav, tmp_path):
    client = server.client()
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not an mp3")
    for create in (client.audio.transcriptions.create, client.audio.translations.create):
        with pytest.raises(openai.BadRequestError) as e, junk.open("rb") as f:
            create(model="whisper", file=f)
        assert e.value.param == "file" and "could not be decoded" in e.value.message
    with pytest.raises(openai.BadRequestError) as e, wav.open("rb") as f:
        client.audio.transcriptions.create(model="whisper", file=f, language="xx")
    assert e.value.param == "language"
    with pytest.raises(openai.BadRequestError) as e, wav.open("rb") as f:
        client.audio.transcriptions.create(model="whisper", file=f,
                                           response_format="verbose_json",
                                           timestamp_granularities=["word"])  # fmt: skip
    assert e.value.param == "timestamp_granularities"
    r = httpx.post(f"{server.url}/v1/audio/transcriptions", data={"model": "whisper"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file", r.text
    files = {"file": ("a.wav", wav.read_bytes())}
    r = httpx.post(f"{server.url}/v1/audio/transcriptions", files=files,
                   data={"response_format": "docx"})  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format", r.text


def test_upload_and_duration_limits_and_the_api_key(tiny_whisper, tiny_reranker, tmp_path):
    long = write(tmp_path / "long.flac", tone(440.0, 4.0), SAMPLE_RATE)
    specs = (ModelSpec("whisper", tiny_whisper), ModelSpec("reranker", tiny_reranker))
    settings = Settings(models=specs, max_upload_bytes=200_000, max_audio_seconds=3.0,
                        api_key="k", properties={"CACHE_DIR": ""})  # fmt: skip
    with ServerThread(create_app(settings)) as s:
        client = s.client(api_key="k")
        with pytest.raises(openai.BadRequestError) as e, long.open("rb") as f:
            client.audio.transcriptions.create(model="whisper", file=f)
        assert e.value.param == "file" and "more than the limit of 3 s" in e.value.message
        big = tmp_path / "big.wav"
        write(big, tone(440.0, 2.0, rate=48_000), 48_000, subtype="FLOAT")  # 384 kB
        with pytest.raises(openai.APIStatusError) as e, big.open("rb") as f:
            client.audio.transcriptions.create(model="whisper", file=f)
        assert e.value.status_code == 413
        # The upload limit is the audio routes' own: JSON bodies keep theirs (1 MiB).
        small = write(tmp_path / "ok.wav", tone(440.0, 1.0), SAMPLE_RATE)
        with small.open("rb") as f:
            assert isinstance(client.audio.transcriptions.create(model="whisper", file=f).text,
                              str)  # fmt: skip
        body = {"query": "q", "documents": ["d"]}  # no model: the first reranker served
        for path in ("/v1/rerank", "/rerank"):
            assert httpx.post(f"{s.url}{path}", json=body).status_code == 401, path
            ok = httpx.post(f"{s.url}{path}", json=body, headers={"Authorization": "Bearer k"})
            assert ok.status_code == 200, ok.text

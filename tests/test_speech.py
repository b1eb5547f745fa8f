"""Speech models: Whisper exported for automatic-speech-recognition, run by openvino-genai's
WhisperPipeline, its greedy tokens checked against PyTorch; audio decoding and resampling;
`ovchat transcribe` and `Model.transcribe`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_main
from kindsbuild import MAX_LENGTH

import ovchat
from ovchat.audio import SAMPLE_RATE, read_audio
from ovchat.engine.transcriber import Transcriber
from ovchat.errors import InvalidModelError, OptionError

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
MAX_NEW = 24  # tokens compared with PyTorch (the tiny model's limit is MAX_LENGTH)


def tone(freq: float, seconds: float = 2.0, rate: int = SAMPLE_RATE, noise: float = 0.0):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    if noise:
        wave += noise * np.random.default_rng(0).standard_normal(t.size)
    return wave.astype(np.float32)


def write(path, samples, rate, **kw):
    import soundfile as sf

    sf.write(str(path), samples, rate, **kw)
    return path


@pytest.fixture(scope="module")
def transcriber(tiny_whisper):
    return Transcriber(tiny_whisper, properties=F32)


class Tokens:
    """A genai streamer that keeps the token ids."""

    def __new__(cls):
        import openvino_genai as ov_genai

        class _Tokens(ov_genai.StreamerBase):
            def __init__(self) -> None:
                super().__init__()
                self.ids: list[int] = []

            def write(self, token):
                self.ids += [int(t) for t in token] if isinstance(token, list) else [int(token)]
                return ov_genai.StreamingStatus.RUNNING

            def end(self) -> None:
                pass

        return _Tokens()


def torch_greedy(hf_dir, samples, prefix, n=MAX_NEW):
    """The reference: transformers' Whisper on PyTorch, greedy by hand after `prefix`."""
    import torch
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = WhisperForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    feats = WhisperFeatureExtractor.from_pretrained(str(hf_dir))(
        samples, sampling_rate=SAMPLE_RATE, return_tensors="pt"
    ).input_features
    ids = [tok.convert_tokens_to_ids(t) for t in prefix]
    out: list[int] = []
    with torch.no_grad():
        enc = model.model.encoder(feats).last_hidden_state
        for _ in range(n):
            logits = model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([ids + out]))
            nxt = int(logits.logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            out.append(nxt)
    return out, tok


@pytest.mark.parametrize("task", ["transcribe", "translate"])
def test_greedy_tokens_match_pytorch(transcriber, tiny_whisper_hf, task):
    got = []
    for freq in (440.0, 880.0):
        audio = tone(freq)
        cfg = transcriber.config("en", task)
        cfg.max_new_tokens = MAX_NEW
        streamer = Tokens()
        transcriber._pipe.generate(audio, cfg, streamer)
        prefix = ["<|startoftranscript|>", "<|en|>", f"<|{task}|>", "<|notimestamps|>"]
        want, _ = torch_greedy(tiny_whisper_hf, audio, prefix)
        assert streamer.ids == want
        got.append(streamer.ids)
    assert got[0] != got[1]  # the check can fail: other audio, other tokens


def test_text_is_the_decoded_tokens(transcriber, tiny_whisper_hf):
    audio = tone(880.0)
    t = transcriber.transcribe(audio, language="en")
    want, tok = torch_greedy(tiny_whisper_hf, audio, ["<|startoftranscript|>", "<|en|>",
                             "<|transcribe|>", "<|notimestamps|>"], n=MAX_LENGTH)  # fmt: skip
    assert t.text == tok.decode(want[: MAX_LENGTH - 4], skip_special_tokens=True)
    assert (t.language, t.seconds, t.segments) == ("en", 2.0, [])
    timed = transcriber.transcribe(audio, language="en", timestamps=True)
    assert timed.segments and all(s.end >= s.start >= 0 for s in timed.segments)


def test_options_are_checked(transcriber):
    audio = tone(440.0)
    for kw, param in (({"language": "xx"}, "language"), ({"task": "summarize"}, "task"),
                      ({"temperature": 3.0}, "temperature")):  # fmt: skip
        with pytest.raises(OptionError) as e:
            transcriber.transcribe(audio, **kw)
        assert e.value.param == param
    assert transcriber.languages == ["de", "en", "fr"]
    assert transcriber.transcribe(audio, language="<|de|>").language == "de"


def test_audio_files_decode_and_resample(tmp_path):
    want = tone(1000.0, 1.5)
    for name, rate, kw in (("a.wav", 44_100, {}), ("b.flac", 48_000, {}),
                           ("c.wav", 16_000, {"subtype": "PCM_16"}),
                           ("d.mp3", 44_100, {})):  # fmt: skip
        stereo = np.stack([tone(1000.0, 1.5, rate), tone(1000.0, 1.5, rate)], axis=1)
        audio = read_audio(write(tmp_path / name, stereo, rate, **kw))
        assert audio.source_rate == rate and audio.samples.dtype == np.float32
        if name.endswith(".mp3"):  # an encoder's delay and padding: compare the spectrum
            spectrum = np.abs(np.fft.rfft(audio.samples))
            peak = np.argmax(spectrum) * SAMPLE_RATE / len(audio.samples)
            assert abs(peak - 1000.0) < 5 and abs(audio.seconds - 1.5) < 0.1
            continue
        assert len(audio.samples) == len(want)
        inner = slice(200, -200)  # the filter's edges
        assert np.corrcoef(audio.samples[inner], want[inner])[0, 1] > 0.999, name
    assert read_audio(tmp_path / "a.wav").seconds == pytest.approx(1.5)


def test_bad_audio_names_the_field(tmp_path):
    for data in (b"not audio at all", b"RIFF\x00\x00\x00\x00WAVE", b""):
        with pytest.raises(OptionError, match="could not be decoded") as e:
            read_audio(data)
        assert e.value.param == "file"
    with pytest.raises(OptionError, match="more than the limit of 1 s") as e:
        read_audio(write(tmp_path / "long.wav", tone(440.0, 3.0), SAMPLE_RATE), max_seconds=1)
    with pytest.raises(OptionError, match="no samples"):
        read_audio(write(tmp_path / "empty.wav", np.zeros(0, np.float32), SAMPLE_RATE))
    with pytest.raises(OptionError, match="does not exist"):
        read_audio(tmp_path / "missing.flac")


def test_load_gives_a_model_that_transcribes(tiny_whisper, transcriber, tiny_reranker, tmp_path):
    model = ovchat.load(str(tiny_whisper), **F32)
    assert type(model).__name__ == "SpeechModel" and model.languages == ["de", "en", "fr"]
    path = write(tmp_path / "t.flac", tone(880.0, rate=22_050), 22_050)
    got = model.transcribe(path, language="en")
    assert got.text == transcriber.transcribe(read_audio(path).samples, language="en").text
    assert model.transcribe(path.read_bytes(), language="en").text == got.text
    with pytest.raises(InvalidModelError, match="speech model"):
        model.generate("hi")
    with pytest.raises(InvalidModelError, match="speech model: it does not rerank"):
        model.rerank("q", ["d"])
    with pytest.raises(InvalidModelError, match="rerank model: it does not transcribe"):
        ovchat.load(str(tiny_reranker)).transcribe(path)
    with pytest.raises(OptionError) as e:
        model.transcribe(b"junk")
    assert e.value.param == "audio"


def test_cli_transcribe_text_json_srt(tiny_whisper, transcriber, tmp_path, capsys):
    path = write(tmp_path / "t.wav", tone(880.0), SAMPLE_RATE)
    want = transcriber.transcribe(tone(880.0), language="en")
    base = ("transcribe", str(path), "-m", str(tiny_whisper), "--language", "en",
            "-p", "INFERENCE_PRECISION_HINT=f32")  # fmt: skip
    r = run_main(capsys, *base)
    assert r.returncode == 0 and r.stdout.strip() == want.text.strip(), r
    r = run_main(capsys, *base, "--format", "json")
    out = json.loads(r.stdout)
    assert (out["text"], out["language"], out["duration"]) == (want.text, "en", 2.0)
    r = run_main(capsys, *base, "--format", "srt")
    assert r.returncode == 0 and r.stdout.startswith("1\n00:00:") and " --> " in r.stdout
    r = run_main(capsys, *base, "--format", "vtt")
    assert r.stdout.startswith("WEBVTT\n\n00:00:")
    r = run_main(capsys, "transcribe", str(path))
    assert r.returncode == 2 and "name a speech model" in r.stderr
    (tmp_path / "junk.mp3").write_bytes(b"junk")
    r = run_main(capsys, "transcribe", str(tmp_path / "junk.mp3"), "-m", str(tiny_whisper))
    assert r.returncode == 2 and "could not be decoded" in r.stderr and "FILE" in r.stderr, r
    r = run_main(capsys, *base[:4], "--language", "xx")
    assert r.returncode == 2 and "--language" in r.stderr, r


def test_the_library_shows_the_kind(tiny_whisper, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OVCHAT_HOME", str(tmp_path))
    r = run_main(capsys, "cp", str(tiny_whisper), "tiny-whisper")
    assert r.returncode == 0, r.stderr
    row = next(ln for ln in run_main(capsys, "list").stdout.splitlines() if "tiny-whisper" in ln)
    assert " speech " in f" {row} ", row
    r = run_main(capsys, "show", "tiny-whisper")
    assert ", speech" in r.stdout and "448" in r.stdout, r.stdout  # the decoder's window
    assert type(ovchat.load("tiny-whisper")).__name__ == "SpeechModel"

"""`ovchat serve --ray` without a Ray instance: the flags, the Serve options, the metrics merge,
and the KubeRay manifest and container file checked against the code they name (no cluster
is reachable here: they are parsed, validated with Ray's own schema, and their names and
versions compared with what ovchat and its lock really have)."""

from __future__ import annotations

import importlib
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytest.importorskip("ray.serve", reason="the ray extra is not installed")

import yaml
from conftest import run_main
from ray.serve.schema import ServeDeploySchema

from ovchat.serve import ray_app, ray_metrics, ray_proxy

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "ray-service.yaml"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"


@pytest.fixture(scope="module")
def service() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


@pytest.fixture(scope="module")
def serve_config(service: dict) -> dict:
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def _containers(service: dict) -> list[dict]:
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def _resolve(import_path: str) -> object:
    module, _, name = import_path.partition(":")
    return getattr(importlib.import_module(module), name)


def test_manifest_is_a_rayservice_whose_serve_config_ray_accepts(service, serve_config):
    assert service["apiVersion"] == "ray.io/v1"
    assert service["kind"] == "RayService"
    ServeDeploySchema.model_validate(serve_config)  # Ray's own schema for serveConfigV2
    (app,) = serve_config["applications"]
    assert _resolve(app["import_path"]) is ray_app.build_app
    assert serve_config["http_options"]["port"] in {
        p["containerPort"] for c in _containers(service) for p in c["ports"]
    }


def test_manifest_args_are_ovchat_serve_flags(serve_config, tiny_llama):
    """The args go through `ovchat serve`'s own parser; only the model (a path on the
    cluster's volume) is swapped for a local export."""
    (app,) = serve_config["applications"]
    args = {**app["args"], "model": str(tiny_llama)}
    settings = ray_app.settings_from_config(args)
    assert settings.ray and settings.autoscale == (1, 4)
    assert settings.max_running == app["args"]["max-running"]
    assert settings.kv_cache_gb == app["args"]["kv-cache-gb"]
    opts = ray_app.deployment_options(settings)
    scaling = opts["autoscaling_config"]
    assert scaling["target_ongoing_requests"] == ray_app.TARGET_ONGOING_REQUESTS
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (1, 4)
    assert opts["max_ongoing_requests"] == settings.max_running + settings.max_waiting
    # The builder itself gives Serve an application, as `serve run` would take it.
    assert type(ray_app.build_app(args)).__name__ == "Application"


def test_manifest_model_lives_on_the_mounted_volume(service, serve_config):
    model = serve_config["applications"][0]["args"]["model"]
    for c in _containers(service):
        mounts = [m["mountPath"] for m in c["volumeMounts"]]
        assert any(model.startswith(m.rstrip("/") + "/") for m in mounts), (c["name"], mounts)


def test_manifest_and_image_run_the_ray_ovchat_pins(service):
    version = metadata.version("ray")
    assert service["spec"]["rayClusterConfig"]["rayVersion"] == version
    image = re.search(r"^FROM\s+(\S+)", CONTAINERFILE.read_text(), re.M)
    assert image and image.group(1).split(":")[1].startswith(f"{version}-py311"), image
    lock = (ROOT / "requirements.lock").read_text()
    assert f"\nray=={version}\n" in lock
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'ray = \["ray\[serve\]>=2\.60,<2\.61"\]', pyproject)


def test_every_container_loads_ovchats_proxy_middleware(service):
    wanted = {"name": ray_proxy.PROXY_CALLBACK_ENV, "value": ray_proxy.PROXY_CALLBACK}
    for c in _containers(service):
        assert wanted in c["env"], c["name"]
    assert f"{ray_proxy.PROXY_CALLBACK_ENV}={ray_proxy.PROXY_CALLBACK}" in (
        CONTAINERFILE.read_text()
    )
    assert [type(m.cls) for m in _resolve(ray_proxy.PROXY_CALLBACK)()] == [type]  # type: ignore[operator]


def test_containerfile_installs_ovchat_with_the_ray_extra_at_the_lock():
    text = CONTAINERFILE.read_text()
    assert re.search(r"pip install .*-c requirements\.lock '\.\[ray\]'", text)
    for copied in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, re.M):
        for src in copied.split():
            assert (ROOT / src).exists(), src


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replicas", "2"], "--replicas needs --ray"),
        (["--ray-address", "auto"], "--ray-address needs --ray"),
        (["--ray", "--replicas", "0"], "--replicas must be at least 1"),
        (["--ray", "--autoscale", "4:1"], "is not MIN:MAX"),
        (["--ray", "--autoscale", "two"], "is not MIN:MAX"),
        (["--ray", "--replicas", "2", "--autoscale", "1:2"], "do not go together"),
    ],
)
def test_bad_ray_flags_are_one_line_and_exit_2(capsys, tiny_llama, argv, message):
    r = run_main(capsys, "serve", "-m", str(tiny_llama), *argv)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_merge_labels_every_sample_with_its_replica():
    from ovchat.serve.metrics import Metrics

    a, b = Metrics(), Metrics()
    a.requests.labels("/v1/chat/completions", "200").inc(3)
    b.requests.labels("/v1/chat/completions", "200").inc(2)
    b.ttft.observe(0.2)
    text = ray_metrics.merge({"r1": a.render().decode(), "r2": b.render().decode()}).decode()
    sample = 'ovchat_requests_total{endpoint="/v1/chat/completions",replica="r1",status="200"}'
    assert f"{sample} 3.0" in text
    assert 'replica="r2",status="200"} 2.0' in text
    assert 'ovchat_time_to_first_token_seconds_count{replica="r2"} 1.0' in text
    assert text.count("# TYPE ovchat_requests_total counter") == 1


def _call_proxy(
    inner, body: bytes = b'{"x": 1}', disconnect: bool = False, path: str = "/v1/chat/completions"
):
    """Run ReplicaFailures around `inner` (a stand-in for Ray's proxy app) for one POST."""
    import asyncio

    sent: list[dict] = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    if disconnect:
        incoming.append({"type": "http.disconnect"})

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(ray_proxy.ReplicaFailures(inner)(scope, receive, send))
    return sent


def test_proxy_sends_a_request_that_got_nothing_once_more():
    bodies: list[bytes] = []

    async def inner(scope, receive, send):
        bodies.append((await receive())["body"])
        if len(bodies) == 1:
            return  # what Serve's proxy does when the replica died before answering
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent = _call_proxy(inner)
    assert bodies == [b'{"x": 1}', b'{"x": 1}']  # the same body, read again
    assert sent[0]["status"] == 200
    assert (ray_proxy.ATTEMPT_HEADER, b"2") in sent[0]["headers"]


def test_proxy_answers_503_in_openai_shape_when_both_attempts_fail():
    import json

    calls = []

    async def inner(scope, receive, send):
        calls.append(await receive())
        raise RuntimeError("actor died at 10.0.0.7")

    sent = _call_proxy(inner)
    assert len(calls) == ray_proxy.ATTEMPTS
    assert sent[0]["status"] == 503
    body = json.loads(sent[1]["body"])
    assert body["error"]["code"] == "replica_failed" and "10.0.0.7" not in sent[1]["body"].decode()
    # Ollama's and Anthropic's paths get their own shapes
    assert set(json.loads(_call_proxy(inner, path="/api/chat")[1]["body"])) == {"error"}
    claude = json.loads(_call_proxy(inner, path="/v1/messages")[1]["body"])
    assert claude["type"] == "error" and claude["error"]["type"] == "overloaded_error"


def test_proxy_never_resends_for_a_client_that_left():
    calls = []

    async def inner(scope, receive, send):
        calls.append(await receive())
        await receive()  # Serve watches for the disconnect, then gives up unanswered

    _call_proxy(inner, disconnect=True)
    assert len(calls) == 1


def test_proxy_ends_a_cut_stream_with_an_error_event():
    async def inner(scope, receive, send):
        await receive()
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        # ...and the replica dies: Serve's proxy returns without ending the body.

    sent = _call_proxy(inner)
    last = sent[-1]
    assert not last.get("more_body", False)
    assert b'"code": "replica_failed"' in last["body"]
    assert last["body"].endswith(b"data: [DONE]\n\n")
    assert len([m for m in sent if m["type"] == "http.response.start"]) == 1  # no second try


def test_ray_without_the_extra_says_what_to_install(capsys, tiny_llama, monkeypatch):
    gone = [m for m in sys.modules if m == "ray" or m.startswith(("ray.", "ovchat.serve.ray"))]
    for name in gone:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    r = run_main(capsys, "serve", "--ray", "-m", str(tiny_llama))
    assert r.returncode == 2
    assert "--ray needs Ray Serve (ray is not installed)" in r.stderr
    assert "pip install 'ovchat[ray]'" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"max-running": 0}, "max-running must be at least 1"),
        ({"autoscale": "4:1"}, "'4:1' is not MIN:MAX"),
        ({"replicas": 2, "autoscale": "1:2"}, "do not go together"),
        ({"max-runing": 4}, "max-runing is not a setting of ovchat serve"),
        ({"property": ["NUM_STREAMS"]}, "property 'NUM_STREAMS' is not KEY=VALUE"),
    ],
)
def test_bad_ray_config_args_are_one_line_naming_the_key(tiny_llama, args, message):
    from ovchat.errors import OptionError

    with pytest.raises(OptionError) as e:
        ray_app.build_app({"model": str(tiny_llama), **args})
    assert str(e.value).startswith("ovchat's Ray args: ") and message in str(e.value)
    assert "\n" not in str(e.value)

"""ServerSettings: one pydantic model from which `ovchat serve`'s flags, a Ray config's args
and the checks of both come; a bad value is one line naming the flag, exit 2."""

from __future__ import annotations

import pytest
from conftest import run_main
from pydantic import ValidationError

from ovchat.serve.settings import ServerSettings
from ovchat.verbs.serve import SHARED, flag


def test_every_setting_is_a_flag_with_its_description_and_default(capsys):
    r = run_main(capsys, "serve", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps the help lines
    for name, field in ServerSettings.model_fields.items():
        if name in SHARED:
            continue
        assert flag(name) in text, name
        words = " ".join((field.description or "").split("`")[0].split()[:3])
        assert f"{flag(name)}" in text and words in text, (name, words)
    assert "--max-running MAX_RUNNING requests generating together (16)" in text
    assert "--read-timeout READ_TIMEOUT seconds" in text and "then 408 (30)" in text
    assert "--replicas REPLICAS with --ray: this many replicas" in text


def test_python_settings_are_checked_by_the_same_fields():
    assert ServerSettings(keep_alive="5m").keep_alive == 300
    assert ServerSettings(properties=["NUM_STREAMS=1"]).properties == {"NUM_STREAMS": "1"}
    assert ServerSettings(ray=True, autoscale="1:4").replica_count == 1
    assert ServerSettings(ray=True, replicas=3).replica_count == 3
    for bad in (
        {"max_running": 0},
        {"kv_cache_gb": float("inf")},
        {"port": 70000},
        {"replicas": 2},
        {"ray": True, "autoscale": "4:1"},
        {"max_runing": 4},
    ):
        with pytest.raises(ValidationError):
            ServerSettings(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep-alive", "soon"], "--keep-alive 'soon' is not a duration"),
        (["--keep-alive", "0"], "--keep-alive must be a positive number"),
        (["--kv-cache-gb", "nan"], "--kv-cache-gb must be a positive number"),
        (["--read-timeout", "-1"], "--read-timeout must be a positive number"),
        (["--max-waiting", "-1"], "--max-waiting must be 0 or more"),
        (["--max-loaded", "0"], "--max-loaded must be at least 1"),
        (["--port", "-1"], "--port -1 is not a port number"),
        (["-p", "NUM_STREAMS"], "--property 'NUM_STREAMS' is not KEY=VALUE"),
        (["--autoscale", "1:2"], "--autoscale needs --ray"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag(capsys, tiny_llama, argv, message):
    r = run_main(capsys, "serve", "-m", str(tiny_llama), *argv)
    assert r.returncode == 2, r
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and "pydantic" not in r.stderr


def test_flags_and_a_ray_config_give_the_same_settings(tiny_llama):
    from ovchat.cli import build_parser
    from ovchat.verbs.serve import settings_from_args

    argv = ["--ray", "--autoscale", "1:3", "--keep-alive", "2m", "-p", "NUM_STREAMS=1"]
    args = build_parser("serve").parse_args(["serve", "-m", str(tiny_llama), *argv])
    from_cli = settings_from_args(args)
    config = {"model": str(tiny_llama), "autoscale": "1:3", "keep-alive": "2m",
              "property": ["NUM_STREAMS=1"], "ray": True}  # fmt: skip
    assert ServerSettings.from_flags(config) == from_cli
    assert from_cli.keep_alive == 120 and from_cli.autoscale == (1, 3)
    assert from_cli.model_dir == tiny_llama and from_cli.properties == {"NUM_STREAMS": "1"}

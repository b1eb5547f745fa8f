"""The web chat page in headless Debian Chromium (playwright drives it), against a real server.

It uses the real default model: its answers are long enough to press stop in the middle.
Set OVCHAT_SCREENSHOTS=DIR to keep the desktop and phone screenshots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_serve import ServerThread

from ovchat.engine import Engine
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 120_000  # upper bound for waits on a busy machine, not a speed check

pytestmark = [
    pytest.mark.browser,
    pytest.mark.real,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture(scope="module")
def server(smollm2: Path) -> Iterator[ServerThread]:
    engine = Engine(smollm2, backend="batching", max_num_seqs=4)
    with ServerThread(create_app(Settings(max_running=4), engine)) as s:
        yield s
    engine.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("OVCHAT_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _chat_requests(page: Any) -> list[dict[str, Any]]:
    """The JSON bodies the page sends to /v1/chat/completions, as they are sent."""
    bodies: list[dict[str, Any]] = []

    def keep(r: Any) -> None:
        if r.url.endswith("/v1/chat/completions"):
            bodies.append(json.loads(r.post_data or "{}"))

    page.on("request", keep)
    return bodies


def _settings(page: Any, max_tokens: int, system: str | None = None) -> None:
    if not page.is_visible("#settings"):
        page.click("#settings-toggle")
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#temperature", "0")
    if system is not None:
        page.fill("#system", system)


def test_chat_streams_keeps_history_and_stops(server, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    bodies = _chat_requests(page)
    page.goto(server.url + "/")
    model = server.client().models.list().data[0].id
    page.wait_for_function("m => document.querySelector('#model').textContent === m", arg=model)

    # 1. a short answer, streamed into the page
    _settings(page, 24, system="You are a friendly assistant.")
    page.fill("#input", "What is the capital of France?")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .note")
    first = page.inner_text(".msg.assistant >> nth=0")
    assert "tokens in" in first and len(first.split("tokens in")[0].strip()) > 3
    page.screenshot(path=str(shots / "desktop.png"))

    # 2. a long answer: watch it grow while streaming, then press stop
    before = server.metrics()
    _settings(page, 3000)
    page.fill("#input", "Write a very long story about a dragon who learns to cook.")
    page.press("#input", "Enter")
    streaming = ".msg.assistant.streaming"
    page.wait_for_function(f"document.querySelector('{streaming}')?.textContent.length > 40")
    assert page.is_visible("#stop") and not page.is_visible("#send")
    page.click("#stop")
    page.wait_for_selector(".msg.assistant >> nth=1 >> .note")
    second = page.locator(".msg.assistant").nth(1)
    assert second.get_attribute("data-finish") == "stopped"
    assert page.is_visible("#send") and not page.is_visible("#stop")
    # the server saw the client go, stopped generating, and holds nothing any more
    after = server.wait_idle()
    key = 'ovchat_requests_total{endpoint="/v1/chat/completions",status="499"}'
    assert after.get(key, 0) - before.get(key, 0) == 1
    made = after["ovchat_generated_tokens_total"] - before["ovchat_generated_tokens_total"]
    assert 0 < made < 3000

    # 3. the conversation is kept in the page and sent with the next question
    _settings(page, 8)
    page.fill("#input", "Thanks!")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant >> nth=2 >> .note")
    last = bodies[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[0]["content"] == "You are a friendly assistant."
    assert last[3]["content"].startswith("Write a very long story")
    assert last[4]["content"] and last[5]["content"] == "Thanks!"
    assert page.locator(".msg.user").count() == 3
    page.close()

    # 4. a phone-sized screen: everything fits the width
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(server.url + "/")
    _settings(phone, 40)
    phone.click("#settings-toggle")  # hide the panel again
    phone.fill("#input", "Hello there")
    phone.click("#send")
    phone.wait_for_selector(".msg.assistant .note", timeout=TIMEOUT_MS)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    phone.screenshot(path=str(shots / "phone.png"))
    phone.click("#settings-toggle")
    phone.screenshot(path=str(shots / "phone-settings.png"))
    phone.close()


def test_new_chat_mid_answer_forgets_it(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    bodies = _chat_requests(page)
    page.goto(server.url + "/")
    _settings(page, 3000, system="")
    page.fill("#input", "Write a very long story about a dragon.")
    page.press("#input", "Enter")
    page.wait_for_function(
        "document.querySelector('.msg.assistant.streaming')?.textContent.length > 20"
    )
    page.click("#clear")  # "New chat" while the answer streams
    page.wait_for_selector("#send")
    _settings(page, 8)
    page.fill("#input", "Hi")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .note")
    assert [m["content"] for m in bodies[-1]["messages"]] == ["Hi"]  # the old turn is gone
    page.close()


def test_page_reports_errors(server, browser):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url + "/")
    _settings(page, 99_999_999)  # beyond the context window: the server answers 400
    page.fill("#input", "hi")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.error")
    assert "context window" in page.inner_text(".msg.error")
    assert page.is_visible("#send")
    page.close()


def test_page_with_api_key(tiny_llama, browser):
    engine = Engine(tiny_llama, backend="batching", max_num_seqs=2)
    try:
        with ServerThread(create_app(Settings(api_key="k3y"), engine)) as s:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(s.url + "/")
            # the page asks for the key: settings open, the server's message shown
            page.wait_for_function("document.querySelector('#status').textContent.length > 0")
            assert "API key" in page.inner_text("#status") and page.is_visible("#api-key")
            page.fill("#api-key", "k3y")
            page.dispatch_event("#api-key", "change")
            page.wait_for_function(
                "m => document.querySelector('#model').textContent === m", arg=engine.info.name
            )
            _settings(page, 5)
            page.fill("#input", "hello")
            page.press("#input", "Enter")
            page.wait_for_selector(".msg.assistant .note")
            assert "5 tokens in" in page.inner_text(".msg.assistant")
            page.close()
    finally:
        engine.close()


def test_json_answers_and_tool_calls_shown_readably(server, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    bodies = _chat_requests(page)
    page.goto(server.url + "/")
    _settings(page, 300, system="")
    # a JSON answer: asked as json_object, shown indented once whole
    page.select_option("#format", "json_object")
    page.fill("#input", "Describe a cat as a JSON object with a name and an age.")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .note")
    assert bodies[-1]["response_format"] == {"type": "json_object"}
    if page.get_attribute(".msg.assistant", "data-finish") == "stop":
        shown = page.inner_text(".msg.assistant pre.json")
        assert isinstance(json.loads(shown), dict)
        assert "\n  " in shown or shown.strip() == "{}"  # indented, not one long line
    # a tool call: the function's name and its arguments as indented JSON
    page.select_option("#format", "text")
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
        "required": ["city"]}}}  # fmt: skip
    page.fill("#tools", json.dumps([weather]))
    page.select_option("#tool-choice", "required")
    page.fill("#input", "What is the weather in Paris?")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant >> nth=1 >> .note")
    answer = page.locator(".msg.assistant").nth(1)
    assert answer.get_attribute("data-finish") == "tool_calls"
    assert answer.locator(".call .fn").inner_text() == "get_weather"
    args = json.loads(answer.locator(".call pre").inner_text())
    assert isinstance(args["city"], str)
    assert bodies[-1]["tool_choice"] == "required" and bodies[-1]["tools"] == [weather]
    page.screenshot(path=str(shots / "tool-call.png"))
    # the call stays in the conversation sent next
    page.select_option("#tool-choice", "none")
    _settings(page, 8)
    page.fill("#input", "Thanks")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant >> nth=2 >> .note")
    sent = bodies[-1]["messages"]
    assert sent[-2]["role"] == "assistant" and sent[-2]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    page.fill("#tools", "not json")
    page.fill("#input", "again")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.error")
    assert "Tools: not JSON" in page.inner_text(".msg.error")
    page.close()

"""The chat page's rendering, model picker and request fields in headless Chromium.

Tiny random models serve these pages. Where a test needs a chosen answer (Markdown, hostile
HTML) the page's request to /v1/chat/completions is answered by playwright with a fixed
stream in OpenAI's format; the page's own code renders it as it would a model's answer.
Set OVCHAT_SCREENSHOTS=DIR to keep the screenshots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_serve import ServerThread
from test_serve_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _chat_requests

from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app
from ovchat.serve.settings import ModelSpec

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

HOSTILE = '<img src=x onerror="window.pwned=1">'
ANSWER = (
    "Here is **bold** and `inline code`.\n\n"
    "```python\nprint('hi')\n```\n\n"
    f"Raw HTML: {HOSTILE} and <script>window.pwned=2</script>\n\n"
    "[a link](javascript:window.pwned=3) ![pic](http://127.0.0.1:9/x.png)\n"
)
SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def server(tiny_llama: Path, tiny_phi3: Path, tiny_bert: Path) -> Iterator[ServerThread]:
    specs = (ModelSpec("llama", tiny_llama), ModelSpec("phi3", tiny_phi3),
             ModelSpec("bert", tiny_bert))  # fmt: skip
    with ServerThread(create_app(Settings(models=specs, kv_cache_gb=1))) as s:
        yield s


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


def _fixed_answer(page: Any, text: str) -> None:
    """Answer the page's chat requests with `text` as one streamed assistant message."""

    def fulfil(route: Any) -> None:
        chunk = {"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": text}, "finish_reason": None}]}  # fmt: skip
        end = {"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}]}  # fmt: skip
        usage = {"object": "chat.completion.chunk", "choices": [], "usage": {
            "prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}}  # fmt: skip
        events = "".join(f"data: {json.dumps(e)}\n\n" for e in (chunk, end, usage))
        route.fulfill(
            status=200, content_type="text/event-stream", body=events + "data: [DONE]\n\n"
        )

    page.route("**/v1/chat/completions", fulfil)


@pytest.mark.parametrize("size", SIZES)
def test_answers_render_as_markdown_and_html_stays_text(server, browser, shots, size):
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelector('#model').textContent === 'llama'")
    _fixed_answer(page, ANSWER)
    page.fill("#input", f"What does {HOSTILE} do?")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .note")

    # the user's text is shown as typed
    assert page.inner_text(".msg.user") == f"What does {HOSTILE} do?"
    # Markdown: bold, inline code, a code block with a copy button
    answer = page.locator(".msg.assistant .md")
    assert answer.locator("strong").inner_text() == "bold"
    assert answer.locator(":not(pre) > code").first.inner_text() == "inline code"
    assert answer.locator("pre code").inner_text().strip() == "print('hi')"
    # raw HTML and image syntax from the model show as text; nothing of it runs or loads
    shown = answer.inner_text()
    assert HOSTILE in shown and "<script>window.pwned=2</script>" in shown
    assert "![pic](http://127.0.0.1:9/x.png)" in shown
    assert page.locator("#log img, #log script").count() == 0
    assert page.evaluate("window.pwned") is None
    assert not any("x.png" in u or u.endswith("/x") for u in fetched)
    href = answer.locator("a").get_attribute("href")
    assert href is None or not href.startswith("javascript:")
    # the copy button puts the code on the clipboard
    answer.locator("pre button.copy").click()
    page.wait_for_function("document.querySelector('pre button.copy').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()").strip() == "print('hi')"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=str(shots / f"markdown-{size}.png"))
    context.close()


def test_model_picker_and_model_defaults(server, browser, shots):
    page = browser.new_page(viewport=SIZES["laptop"])
    page.set_default_timeout(TIMEOUT_MS)
    bodies = _chat_requests(page)
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelector('#model').textContent === 'llama'")
    # chat models only: the embedding model is not offered
    assert page.is_visible("#model-pick")
    options = page.eval_on_selector_all("#model-pick option", "os => os.map(o => o.value)")
    assert options == ["llama", "phi3"]
    page.select_option("#model-pick", "phi3")
    assert page.inner_text("#model") == "phi3"
    page.fill("#input", "hello")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .note")
    sent = bodies[-1]
    assert sent["model"] == "phi3"
    # sampling fields left empty: nothing sent, so the model's own defaults apply
    assert not {"temperature", "top_p", "max_tokens"} & sent.keys()
    # set by the user: sent as set (in a new chat: the tiny model's window is full)
    page.click("#clear")
    page.click("#settings-toggle")
    page.fill("#temperature", "0.3")
    page.fill("#max-tokens", "5")
    page.fill("#input", "again")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant >> nth=0 >> .note")
    assert bodies[-1]["temperature"] == 0.3 and bodies[-1]["max_tokens"] == 5
    assert "top_p" not in bodies[-1]
    assert "5 tokens in" in page.inner_text(".msg.assistant")
    page.screenshot(path=str(shots / "picker.png"))
    page.close()


def test_one_model_no_picker(tiny_llama, browser):
    with ServerThread(create_app(Settings(models=(ModelSpec("solo", tiny_llama),)))) as s:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(s.url + "/")
        page.wait_for_function("document.querySelector('#model').textContent === 'solo'")
        assert not page.is_visible("#model-pick")
        page.close()


@pytest.fixture(scope="module")
def vision_server(tiny_llava: Path, tiny_llama: Path) -> Iterator[ServerThread]:
    specs = (ModelSpec("llava", tiny_llava), ModelSpec("llama", tiny_llama))
    props = {"INFERENCE_PRECISION_HINT": "f32"}
    with ServerThread(create_app(Settings(models=specs, kv_cache_gb=1, properties=props))) as s:
        yield s


def test_attach_and_paste_images(vision_server, browser, shots, tmp_path):
    from test_vision import flat, png

    red = tmp_path / "red.png"
    red.write_bytes(png(flat((200, 40, 90))))
    page = browser.new_page(viewport=SIZES["laptop"])
    page.set_default_timeout(TIMEOUT_MS)
    bodies = _chat_requests(page)
    page.goto(vision_server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model-pick option').length === 2")
    assert "(images)" in page.inner_text("#model-pick option[value=llava]")
    page.select_option("#model-pick", "llava")
    page.click("#settings-toggle")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "8")
    # attach a file: a thumbnail waits above the input, then goes with the message
    page.set_input_files("#attach", str(red))
    page.wait_for_selector("#attached .thumb")
    page.fill("#input", "Describe the picture.")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .note")
    assert page.locator(".msg.user img.thumb").count() == 1
    assert not page.is_visible("#attached")
    sent = bodies[-1]["messages"][-1]["content"]
    assert [p["type"] for p in sent] == ["image_url", "text"]
    assert sent[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert page.inner_text(".msg.assistant .md").strip()
    page.screenshot(path=str(shots / "image-chat.png"))
    # paste an image into the input box; a text-only model answers with the part named
    page.click("#clear")
    page.select_option("#model-pick", "llama")
    page.evaluate(
        """b64 => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "pasted.png", { type: "image/png" }));
        const paste = new ClipboardEvent('paste', { clipboardData: dt, cancelable: true });
        document.querySelector('#input').dispatchEvent(paste); }""",
        __import__("base64").b64encode(red.read_bytes()).decode(),
    )
    page.wait_for_selector("#attached .thumb")
    page.fill("#input", "And this?")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.error")
    assert "messages[0].content[0]" in page.inner_text(".msg.error")
    assert "text-only" in page.inner_text(".msg.error")
    page.close()

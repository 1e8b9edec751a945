"""The playground in a real browser: the distribution's Chromium, driven by Playwright, on a
real ``pilothouse serve`` process (FunctionModel agents decide; everything else is real).

Each test saves a screenshot of the page when it fails (the path is printed). With
``PILOTHOUSE_SCREENSHOT=docs/playground.png`` the screenshot test also writes the README's
picture there.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playground_kit import CHROMIUM_ARGS, KEY, chromium, serving
from serve_kit import Server
from serverkit import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEY_NAME = "pilothouse.key"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT = 15_000  # ms: the longest any step of these tests may take


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("playground")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is a dev dependency
        unavailable(f"playwright is not installed: {exc}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def opened_page(
    request: pytest.FixtureRequest,
    browser: Any,
    server: Server,
    tmp_path: Path,
    *,
    key: str | None,
    viewport: dict[str, int],
) -> Iterator[Any]:
    """A fresh page on the playground (with ``key`` in session storage); a screenshot if the
    test fails; every request it made checked to go to the app only."""
    context = browser.new_context(viewport=viewport)
    if key is not None:
        context.add_init_script(f"sessionStorage.setItem({KEY_NAME!r}, {key!r})")
    page = context.new_page()
    page.set_default_timeout(WAIT)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed_before = request.session.testsfailed
    failed = False
    try:
        yield page
    except BaseException:
        failed = True
        raise
    finally:
        # Used as a fixture, the test's failure is not raised here, but its report is in by
        # teardown: the session has counted it.
        if failed or request.session.testsfailed > failed_before:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of the failed page: {shot}\npage errors: {errors}")
        context.close()
    outside = [url for url in requests if not url.startswith(server.url + "/")]
    assert not outside, f"the page made requests to other hosts: {outside}"
    assert not errors, f"errors on the page: {errors}"


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser: Any, server: Server, tmp_path: Path
) -> Iterator[Any]:
    with opened_page(request, browser, server, tmp_path, key=KEY, viewport=DESKTOP) as opened:
        yield opened


def start(page: Any, server: Server, fragment: str = "") -> None:
    page.goto(f"{server.url}/{fragment}")
    page.wait_for_selector("#agent option[value=assistant]", state="attached")


def send(page: Any, text: str) -> Any:
    """Type ``text`` and press Enter; the assistant turn it starts."""
    turns = page.locator("li.turn.assistant")
    before = turns.count()
    page.fill("#message", text)
    page.press("#message", "Enter")
    turn = turns.nth(before)
    turn.wait_for()
    return turn


def finished(turn: Any, status: str = "completed") -> Any:
    turn.page.wait_for_function(
        "([el, s]) => el.dataset.status === s", arg=[turn.element_handle(), status]
    )
    return turn


def test_a_message_streams_a_markdown_answer_with_metrics(page: Any, server: Server) -> None:
    start(page, server)
    turn = send(page, "words 40 0.04")
    # Streamed: words appear while the run is still going, and the turn is busy for screen
    # readers until the answer is complete.
    turn.locator(".answer", has_text="w3 ").wait_for()
    assert turn.get_attribute("data-status") == "running"
    assert turn.get_attribute("aria-busy") == "true"
    finished(turn)
    assert turn.get_attribute("aria-busy") == "false"
    assert turn.locator(".answer").inner_text().strip().endswith("w39")
    assert page.locator("#conversation").get_attribute("aria-live") == "polite"

    turn = finished(send(page, "markdown"))
    answer = turn.locator(".answer")
    assert answer.locator("strong").inner_text() == "bold"
    assert answer.locator("code").inner_text() == "code"
    assert answer.locator("li").all_inner_texts() == ["one", "two"]
    tokens = turn.locator("[data-metric=tokens]").inner_text()
    assert re.fullmatch(r"Tokens \d+ \(\d+ in, \d+ out\)", tokens), tokens
    assert re.fullmatch(r"First token <?\d+ ms", turn.locator("[data-metric=ttft]").inner_text())
    assert re.fullmatch(r"Time \d+ ms", turn.locator("[data-metric=duration]").inner_text())
    assert turn.locator("[data-metric=cost]").inner_text() == "Cost n/a"
    # The text of the user's messages is shown as typed.
    assert page.locator("li.turn.user .bubble").all_inner_texts() == ["words 40 0.04", "markdown"]


def test_a_tool_call_card_shows_arguments_result_and_timing(page: Any, server: Server) -> None:
    start(page, server)
    turn = finished(send(page, "weather Lyon"))
    card = turn.locator("details.tool")
    assert card.get_attribute("data-status") == "done"
    assert card.locator(".tool-name").inner_text() == "get_weather"
    assert card.locator(".tool-status").inner_text() == "done"
    assert re.fullmatch(r"\d+ ms", card.locator(".tool-time").inner_text())
    card.locator("summary").click()
    assert '"city": "Lyon"' in card.locator(".tool-args").inner_text()
    assert card.locator(".tool-result").inner_text() == "Sunny and 21°C in Lyon"
    # The answer before and after the call, and the model's reasoning (folded).
    answers = turn.locator(".answer").all_inner_texts()
    assert answers == ["Let me look that up.", "The forecast: Sunny and 21°C in Lyon."]
    assert "I will look it up." in turn.locator(".reasoning").text_content()
    # The session state, as the run changed it.
    assert '"last_city": "Lyon"' in page.locator("#session-state").text_content()


def test_a_paused_tool_is_approved_in_the_page(page: Any, server: Server) -> None:
    start(page, server)
    turn = send(page, "confirm")
    box = turn.locator(".interrupt[data-reason=confirmation]")
    box.wait_for()
    finished(turn, "interrupted")
    assert "delete_logs" in box.locator(".interrupt-message").inner_text()
    assert turn.locator("details.tool").get_attribute("data-status") == "waiting"
    # Keyboard first: the answer's first control has the focus.
    assert page.evaluate("document.activeElement.name") == "note"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the focused button: Approve
    finished(turn)
    assert box.locator(".interrupt-answer").inner_text() == "Approved."
    assert turn.locator(".answer").last.inner_text() == "result: deleted all rows of logs"
    assert turn.locator("details.tool").get_attribute("data-status") == "done"


def test_requested_input_and_an_external_result_are_filled_in_the_page(
    page: Any, server: Server
) -> None:
    start(page, server)
    turn = send(page, "hitl")
    finished(turn, "interrupted")
    assert turn.locator(".interrupt").count() == 3
    page.get_by_label("to", exact=True).fill("ada@example.com")
    turn.locator(".interrupt[data-reason=user_input] button[type=submit]").click()
    page.get_by_label("Result", exact=True).fill("up 3 days")
    turn.locator(".interrupt[data-reason=external_execution] button[type=submit]").click()
    turn.locator(".interrupt[data-reason=confirmation] input[name=note]").fill("keep it")
    turn.locator(".interrupt[data-reason=confirmation] button.reject").click()
    finished(turn)
    text = turn.locator(".answer").last.inner_text()
    assert "sent 'weekly' to ada@example.com" in text and "up 3 days" in text
    assert "rejected" in text and "keep it" in text


def test_a_reload_shows_the_sessions_history(page: Any, server: Server) -> None:
    start(page, server)
    finished(send(page, "weather Oslo"))
    finished(send(page, "markdown"))
    finished(send(page, "confirm"), "interrupted")
    thread = re.search(r"thread=([\w-]+)", page.url)
    assert thread is not None

    page.reload()
    page.locator("li.turn.assistant").nth(2).wait_for()
    assert page.locator("li.turn.user .bubble").all_inner_texts() == [
        "weather Oslo",
        "markdown",
        "confirm",
    ]
    turns = page.locator("li.turn.assistant")
    card = turns.nth(0).locator("details.tool")
    assert card.get_attribute("data-status") == "done"
    assert card.locator(".tool-result").text_content() == "Sunny and 21°C in Oslo"
    assert turns.nth(1).locator(".answer strong").inner_text() == "bold"
    assert turns.nth(1).locator("[data-metric=tokens]").count() == 1
    # The paused run can still be answered after the reload: the same run goes on.
    turns.nth(2).locator("button.approve").click()
    finished(turns.nth(2))
    assert turns.nth(2).locator(".answer").last.inner_text() == "result: deleted all rows of logs"

    # A new chat, then the session picked from the list.
    page.click("#new-chat")
    assert page.locator("li.turn").count() == 0
    page.locator(f"button.session[data-session-id='{thread.group(1)}']").click()
    page.locator("li.turn.user").nth(2).wait_for()
    assert page.locator("button.session[aria-current=true]").get_attribute(
        "data-session-id"
    ) == thread.group(1)


def test_a_run_is_cancelled_from_the_page(page: Any, server: Server) -> None:
    start(page, server)
    turn = send(page, "words 300 0.05")
    turn.locator(".answer", has_text="w2 ").wait_for()
    page.click("#cancel")
    finished(turn, "cancelled")
    assert turn.locator(".note").inner_text() == "Cancelled."
    words = turn.locator(".answer").inner_text().split()
    assert 0 < len(words) < 300
    # The stored run says so too.
    runs = httpx.get(
        f"{server.url}/sessions/{_thread(page)}/runs",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).json()
    assert runs[-1]["status"] == "CANCELLED"
    # Escape cancels too.
    turn = send(page, "words 300 0.05")
    turn.locator(".answer", has_text="w2 ").wait_for()
    page.focus("#message")
    page.keyboard.press("Escape")
    finished(turn, "cancelled")


def _thread(page: Any) -> str:
    found = re.search(r"thread=([\w-]+)", page.url)
    assert found is not None
    return found.group(1)


@pytest.fixture
def keyless_page(
    request: pytest.FixtureRequest, browser: Any, server: Server, tmp_path: Path
) -> Iterator[Any]:
    with opened_page(request, browser, server, tmp_path, key=None, viewport=DESKTOP) as opened:
        yield opened


def test_a_wrong_key_is_refused(keyless_page: Any, server: Server) -> None:
    page = keyless_page
    page.goto(f"{server.url}/")
    dialog = page.locator("#key-dialog")
    dialog.wait_for()
    assert page.locator("#key-error").inner_text() == "This server needs a security key."
    page.get_by_label("Security key or token").fill("not-the-key")
    page.press("#key-input", "Enter")
    page.wait_for_function(
        "document.querySelector('#key-error').textContent.startsWith('The key was refused')"
    )
    assert dialog.is_visible()
    assert page.locator("#agent option").count() == 0
    page.get_by_label("Security key or token").fill(KEY)
    page.get_by_label("Remember on this device").check()
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#agent option[value=assistant]", state="attached")
    assert not dialog.is_visible()
    assert page.evaluate(f"localStorage.getItem({KEY_NAME!r})") == KEY
    assert page.evaluate(f"sessionStorage.getItem({KEY_NAME!r})") is None
    finished(send(page, "hello"))
    assert page.locator(".answer").inner_text() == "echo: hello"


def test_markup_from_the_model_stays_text(page: Any, server: Server) -> None:
    start(page, server)
    hostile = '<img src=x onerror="window.pwned=1"> [x](javascript:window.pwned=2) <b>b</b>'
    turn = finished(send(page, hostile))
    answer = turn.locator(".answer")
    assert answer.inner_text() == f"echo: {hostile}".replace("[x](javascript:", "x (javascript:")
    assert answer.locator("img, b, script").count() == 0
    assert answer.locator("a").count() == 0
    assert page.evaluate("window.pwned") is None
    rendered = page.evaluate(
        """async () => {
            const { renderMarkdown } = await import('./ui/markdown.js');
            return [
              renderMarkdown('# Title\\n\\n1. a\\n2. b\\n\\n```py\\nx = "<y>"\\n```'),
              renderMarkdown('see [docs](https://example.com/a?b=1&c=2) and *it*'),
              renderMarkdown('> quoted **text**'),
            ];
        }"""
    )
    assert rendered[0] == (
        "<h1>Title</h1>\n<ol><li>a</li><li>b</li></ol>\n"
        '<pre><code data-lang="py">x = &quot;&lt;y&gt;&quot;</code></pre>'
    )
    assert rendered[1] == (
        '<p>see <a href="https://example.com/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer">docs</a> and <em>it</em></p>'
    )
    assert rendered[2] == "<blockquote><p>quoted <strong>text</strong></p></blockquote>"


def test_every_control_has_a_label_and_the_page_a_strict_policy(page: Any, server: Server) -> None:
    start(page, server)
    finished(send(page, "hitl"), "interrupted")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                           && !c.textContent.trim())
            .map((c) => c.outerHTML)"""
    )
    assert unlabelled == []
    answer = httpx.get(f"{server.url}/", timeout=10)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def phone_page(
    request: pytest.FixtureRequest, browser: Any, server: Server, tmp_path: Path
) -> Iterator[Any]:
    with opened_page(request, browser, server, tmp_path, key=KEY, viewport=PHONE) as opened:
        yield opened


def test_readable_at_a_phone_width(phone_page: Any, server: Server) -> None:
    page = phone_page
    start(page, server)
    finished(send(page, "weather Rome"))
    finished(send(page, "markdown"))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"
    for selector in ("#message", "#send", "#agent", "#toggle-sessions"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert page.locator(selector).is_visible()
    # The sessions are one tap away.
    assert not page.locator("#sessions").is_visible()
    page.click("#toggle-sessions")
    assert page.locator("#sessions").is_visible()
    assert page.locator("#toggle-sessions").get_attribute("aria-expanded") == "true"


def test_screenshot_for_the_readme(
    request: pytest.FixtureRequest, browser: Any, server: Server, tmp_path: Path
) -> None:
    with opened_page(
        request, browser, server, tmp_path, key=KEY, viewport={"width": 1280, "height": 860}
    ) as page:
        start(page, server)
        finished(send(page, "Plan my day in Paris"))
        turn = send(page, "Book a table for two tonight")
        turn.locator(".interrupt button.approve").wait_for()
        page.locator("details.tool").first.locator("summary").click()
        page.locator(".state-box summary").click()
        page.locator("#message").fill("Thanks! And tomorrow?")
        page.locator("#conversation").evaluate("el => el.scrollTo(0, el.scrollHeight)")
        shot = tmp_path / "playground.png"
        page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    target = os.environ.get("PILOTHOUSE_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
        print(f"\nwrote {target}")


def test_the_demo_opens_a_working_chat(
    request: pytest.FixtureRequest, browser: Any, tmp_path: Path
) -> None:
    """``pilothouse serve --demo``: the embedded model, no key, a working chat."""
    import importlib.util

    from pilothouse.models.weights import default_model_path

    if importlib.util.find_spec("llama_cpp") is None:
        unavailable("llama-cpp-python is not installed (make test installs it)")
    try:
        default_model_path()
    except FileNotFoundError as exc:
        unavailable(str(exc))
    with (
        serving(tmp_path, demo=True) as demo,
        opened_page(request, browser, demo, tmp_path, key=None, viewport=DESKTOP) as page,
    ):
        page.goto(f"{demo.url}/")
        page.wait_for_selector("#agent option[value=demo]", state="attached")
        assert not page.locator("#key-dialog").is_visible()
        turn = send(page, "Hello! Say hi in three words.")
        page.wait_for_function(
            "el => el.dataset.status === 'completed'", arg=turn.element_handle(), timeout=180_000
        )
        assert turn.locator(".answer").inner_text().strip()
        assert re.match(r"Tokens [1-9]", turn.locator("[data-metric=tokens]").inner_text())
        assert turn.locator("[data-metric=cost]").inner_text() == "Cost $0"  # a local model
    assert f"Pilothouse playground: {demo.url}/" in demo.log()

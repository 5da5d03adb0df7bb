"""Debian's chromium driven by Playwright, as the console's browser tests and the screenshot
script launch it: the system binary (``scripts/bootstrap test`` installs it with apt-get),
never a downloaded browser, with the flags that keep it off this machine's closed network.

Also the pieces both console test modules share: a tab whose script errors and Content
Security Policy refusals are collected (a test fails on either), and signing in with an API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium for the duration of the block; fails loudly when it is missing."""
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing: `bash scripts/bootstrap test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def page_problems(tab: Page) -> list[str]:
    """The list that fills with the tab's uncaught script errors and the resources or inline
    code its Content Security Policy refused (chromium reports those as console errors)."""
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"refused by the Content Security Policy: {message.text}")

    tab.on("console", console)
    return problems


@contextmanager
def console_tab(browser: Browser, **context_options: Any) -> Iterator[Page]:
    """A fresh tab in a fresh context; fails the test on any script error or CSP refusal in it."""
    context = browser.new_context(viewport=VIEWPORT, **context_options)
    tab = context.new_page()
    problems = page_problems(tab)
    try:
        yield tab
    finally:
        context.close()
    assert not problems, f"the page went wrong: {problems}"


def use_api_key(tab: Page, key: str, console_url: str = "/console") -> None:
    """Signs the console in with an API key and waits for the shell."""
    tab.goto(console_url)
    tab.locator('[data-role="key-form"] input[name="api_key"]').fill(key)
    tab.locator('[data-action="use-key"]').click()
    expect(tab.locator("[data-action=sign-out]")).to_be_visible()

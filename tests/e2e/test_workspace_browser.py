"""The workspace in a real browser (headless Chromium, driven by Playwright): sign in with a
link, open a patient, postpone a prompt and find it in /schedule; copy and edit a template
and use it in /session; open it as a Mini App with signed initData; phone width, keyboard
labels and contrast in light and dark. Skipped, with the reason, where no Chromium is
installed (`.ci/run` installs Debian's where it can)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bot.workspace import initdata
from tests.e2e.served import chromium, chromium_path, served
from tests.integration.workspace import dashboard_link
from tests.integration.world import TOKEN, World, running

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="no Chromium installed (apt install chromium, or set AFTERGLOW_TEST_CHROMIUM)",
)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running("sqlite", tmp_path) as w:
        yield w


async def _signed_in(world: World, therapist: Any, browser: Any, base: str, **page: Any) -> Any:
    """A new page signed in with the therapist's /dashboard link, on the patient list."""
    token = await dashboard_link(world, therapist)
    tab = await browser.new_page(**page)
    await tab.goto(f"{base}/app/signin?token={token}")
    await tab.get_by_role("button", name="Sign in").click()
    await tab.wait_for_url("**/app/patients")
    return tab


async def test_sign_in_open_a_patient_postpone_and_see_it_in_the_chat(world: World) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    async with served(world) as base, chromium() as browser:
        page = await _signed_in(world, therapist, browser, base)
        await page.get_by_role("link", name="lake").click()
        await page.wait_for_url("**/app/patients/*")
        row = page.locator("tr", has_text="ref-one-word").first
        await row.get_by_role("button", name="Postpone 1 hour").click()
        await page.get_by_role("status").filter(has_text="Moved ref-one-word").wait_for()
        assert "Wed 11 Mar 08:00" in await page.get_by_role("status").inner_text()
        assert await page.evaluate("() => window.localStorage.length") == 0
        assert await page.evaluate("() => window.sessionStorage.length") == 0
    await world.say(therapist, "/schedule lake")
    assert "Wed 11 Mar 08:00 · reflection ref-one-word" in world.last(therapist)["text"]


async def test_create_a_template_from_a_copy_and_use_it_in_a_session(world: World) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    async with served(world) as base, chromium() as browser:
        page = await _signed_in(world, therapist, browser, base)
        await page.get_by_role("link", name="Templates").click()
        await page.get_by_role("button", name="Copy “short” to edit").click()
        name = page.get_by_label("Name", exact=True)
        await name.wait_for()
        await name.fill("gentle-week")
        await page.get_by_label("Step 2 answer window").fill("48h")
        await page.get_by_label("Time zone").fill("Europe/Berlin")
        await page.get_by_role("button", name="Show times").click()
        await page.locator("#preview").filter(has_text="Europe/Berlin").wait_for()
        await page.get_by_label("Step 1 count").fill("61")
        await page.get_by_role("button", name="Save", exact=True).click()
        await page.get_by_role("alert").filter(has_text="count").wait_for()
        problem = await page.get_by_role("alert").inner_text()
        assert "templates/gentle-week.yaml:" in problem
        await page.get_by_label("Step 1 count").fill("")
        await page.get_by_role("button", name="Save", exact=True).click()
        await page.get_by_role("status").filter(has_text="Saved “gentle-week”").wait_for()
    await world.say(therapist, "/session lake gentle-week")
    assert "template gentle-week" in world.last(therapist)["text"].replace("<b>", "").replace(
        "</b>", ""
    )


async def test_the_mini_app_opens_with_signed_init_data_in_the_telegram_theme(
    world: World,
) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    signed = initdata.for_user(therapist.id, bot_token=TOKEN, at=world.clock.now())
    theme = json.dumps(TELEGRAM_DARK)
    fragment = f"tgWebAppData={quote(signed)}&tgWebAppThemeParams={quote(theme)}"
    async with served(world) as base, chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await page.goto(f"{base}/app#{fragment}")
        await page.get_by_role("link", name="lake").wait_for()
        background = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(23, 33, 43)"
        assert "tgWebAppData" not in page.url  # not left in the address bar
        await page.get_by_role("link", name="lake").click()
        await page.get_by_role("heading", name="lake").wait_for()  # the header went along
        assert await page.evaluate("() => document.cookie") == ""
        await page.get_by_role("button", name="Pause messages").click()  # a POST, no cookie
        await page.get_by_role("status").filter(has_text="Paused lake").wait_for()

        tampered = fragment.replace("auth_date%3D", "auth_date%3D1")
        other = await browser.new_page()
        await other.goto(f"{base}/app#{tampered}")
        await other.get_by_role("heading", name="Please sign in").wait_for()


TELEGRAM_DARK = {  # colours a Telegram desktop client sends in its dark theme
    "bg_color": "#17212b",
    "text_color": "#f5f5f5",
    "hint_color": "#aab4bf",
    "link_color": "#6ab3f3",
    "button_color": "#5288c1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#232e3c",
}

_CONTRAST = """() => {
  const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const bodyBg = getComputedStyle(document.body).backgroundColor;
  const out = [];
  for (const sel of ["body", ".hint", "a", "button:not(.quiet)", "th"]) {
    const el = document.querySelector(sel);
    if (!el) continue;
    const style = getComputedStyle(el);
    const bg = style.backgroundColor === "rgba(0, 0, 0, 0)" ? bodyBg : style.backgroundColor;
    out.push([sel, ratio(style.color, bg)]);
  }
  return out;
}"""

_UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
  .map((el) => el.name)"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_pages_fit_a_phone_are_labelled_and_keep_contrast(world: World, scheme: str) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    async with served(world) as base, chromium() as browser:
        page = await _signed_in(
            world,
            therapist,
            browser,
            base,
            viewport={"width": 360, "height": 740},
            color_scheme=scheme,
        )
        links = await page.evaluate(
            "() => [...document.querySelectorAll('a[href^=\"/app/patients/\"]')].map(a => a.href)"
        )
        await page.goto(f"{base}/app/templates")
        await page.get_by_role("button", name="Copy “course” to edit").click()
        await page.get_by_label("Name", exact=True).wait_for()
        editor = page.url
        for path in ["/app/patients", links[0], "/app/alerts", "/app/templates", editor]:
            await page.goto(path if path.startswith("http") else f"{base}{path}")
            width = await page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            assert await page.evaluate(_UNLABELLED) == [], path
            for selector, ratio in await page.evaluate(_CONTRAST):
                assert ratio >= 4.5, (path, scheme, selector, ratio)
        await page.goto(f"{base}/app/patients")
        await page.keyboard.press("Tab")  # the first stop is "Skip to content"
        focused = await page.evaluate("() => document.activeElement.textContent")
        assert re.search("Skip to content", focused)

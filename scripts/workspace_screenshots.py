"""Screenshots of every workspace page, light and dark, phone (360 px) and desktop, for
docs/workspace.md. A made-up clinic: the real bot against the emulator, a week of prompts
answered by scripted patients, the workspace in Debian's Chromium.

    python scripts/workspace_screenshots.py [OUT_DIR]     (default docs/workspace)
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.served import chromium, chromium_path, served  # noqa: E402
from tests.integration.workspace import dashboard_link  # noqa: E402
from tests.integration.world import World, close_world, make_world  # noqa: E402

REFLECTIONS = [
    "Calmer than I expected. I noticed I wasn't bracing my shoulders all the time.",
    "I thought about my dad, and for once it wasn't only anger.",
    "Small thing: I made tea and actually sat down to drink it.",
    "Hard day at work, but I caught the old story before it ran away with me.",
]
VARIANTS = [("desktop", 1280, 900), ("phone", 360, 740)]


async def _answer_everything(world: World, patient: Any, seen: set[int], day: int) -> None:
    for message in list(world.state.sent_messages(patient.id)):
        mid = message["message_id"]
        if mid in seen:
            continue
        seen.add(mid)
        markup = message.get("reply_markup") or {}
        if markup.get("force_reply"):
            await world.say(patient, REFLECTIONS[day % len(REFLECTIONS)], reply_to=mid)
            continue
        labels = [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
        digits = [label for label in labels if label.isdigit()]
        if digits:
            await world.tap(patient, mid, digits[min(len(digits) - 1, 3 + day % 4)])
        elif "Got it" in labels:
            await world.tap(patient, mid, "Got it")


async def _clinic(world: World) -> Any:
    therapist = await world.therapist("Dr Rivera")
    patients = [await world.enrolled_patient(therapist, name) for name in ("lake", "river-7")]
    await world.enrolled_patient(therapist, "moss", zone="Europe/Berlin")
    await world.say(therapist, "/session lake")
    await world.say(therapist, "/session river-7 2026-03-17 10:00 course")
    seen: set[int] = set()
    for day in range(6):
        await world.run_until(world.clock.now() + timedelta(days=1), step=timedelta(hours=1))
        await _answer_everything(world, patients[0], seen, day)
    await world.say(patients[1], "honestly i want to end my life")
    return therapist


async def main(out: Path) -> None:
    if chromium_path() is None:
        raise SystemExit("no Chromium: apt install chromium (or set AFTERGLOW_TEST_CHROMIUM)")
    with tempfile.TemporaryDirectory() as tmp:
        world = await make_world(f"sqlite+aiosqlite:///{tmp}/shots.db")
        try:
            therapist = await _clinic(world)
            async with served(world) as base, chromium() as browser:
                for scheme in ("light", "dark"):
                    for kind, width, height in VARIANTS:
                        page = await browser.new_page(
                            viewport={"width": width, "height": height}, color_scheme=scheme
                        )
                        token = await dashboard_link(world, therapist)
                        await page.goto(f"{base}/app/signin?token={token}")
                        await page.get_by_role("button", name="Sign in").click()
                        await page.wait_for_url("**/app/patients")
                        await _shoot(page, base, out, f"{kind}-{scheme}")
                        await page.close()
        finally:
            await close_world(world)


async def _shoot(page: Any, base: str, out: Path, suffix: str) -> None:
    await page.screenshot(path=out / f"patients-{suffix}.png")
    await page.get_by_role("link", name="lake").click()
    await page.wait_for_url("**/app/patients/*")
    await page.locator("#trends-h").scroll_into_view_if_needed()
    await page.goto(page.url)  # top of the page
    await page.screenshot(path=out / f"patient-{suffix}.png")
    await page.locator("#trends-h").scroll_into_view_if_needed()
    await page.screenshot(path=out / f"patient-chart-{suffix}.png")
    await page.goto(f"{base}/app/alerts")
    await page.screenshot(path=out / f"alerts-{suffix}.png")
    await page.goto(f"{base}/app/templates")
    await page.screenshot(path=out / f"templates-{suffix}.png")
    found = re.search(r"/app/templates/(\d+)", await page.content())
    if found is None:
        await page.get_by_role("button", name="Copy “course” to edit").click()
    else:
        await page.goto(f"{base}/app/templates/{found.group(1)}")
    await page.locator("#preview table").wait_for()
    await page.screenshot(path=out / f"template-{suffix}.png")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "workspace"
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))

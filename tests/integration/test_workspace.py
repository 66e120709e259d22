"""The therapist workspace (SPEC "Therapist workspace (web)") through the real web app and the
real bot: sign-in both ways, sessions that end, what every response carries, ownership, and
each action going through the same service the chat uses (seen afterwards in the chat)."""

from __future__ import annotations

import gettext
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import func, select

from bot import i18n
from bot.db.models import (
    Alert,
    AuditEntry,
    Delivery,
    OwnTemplate,
    Patient,
    Therapist,
    WorkspaceLink,
)
from bot.domain.content import check_content
from bot.domain.states import DeliveryState
from bot.emulator.updates import EmuUser
from bot.services import therapists
from bot.views import web
from bot.workspace import initdata
from tests.integration.workspace import (
    ORIGIN,
    browser,
    dashboard_link,
    mini_app_header,
    sign_in,
)
from tests.integration.world import TOKEN, World, running
from tests.support.pg import backends


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running("sqlite", tmp_path) as w:
        yield w


async def _patient_id(world: World, pseudonym: str) -> int:
    async with world.rt.sessions() as session:
        found = await session.scalar(select(Patient.id).where(Patient.pseudonym == pseudonym))
        assert found is not None
        return found


async def _audits(world: World, action: str) -> int:
    async with world.rt.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


# --- getting in ------------------------------------------------------------------------------


async def test_dashboard_gives_a_single_use_link_that_signs_in_with_a_strict_cookie(
    world: World,
) -> None:
    therapist = await world.therapist()
    token = await dashboard_link(world, therapist)
    answer = world.last(therapist)
    assert answer.get("has_protected_content")  # a link that signs in is not for forwarding
    assert "reply_markup" not in answer  # no https public URL: no Mini App button
    async with world.rt.sessions() as session:  # only its hash is stored
        stored = list(await session.scalars(select(WorkspaceLink.token_hash)))
    assert stored and token not in stored
    async with browser(world) as b:
        shown = await b.http.get(f"/app/signin?token={token}")  # a preview or prefetch...
        assert shown.status_code == 200 and "Sign in" in shown.text
        signed = await b.http.post("/app/signin", data={"token": token}, headers={"Origin": ORIGIN})
        assert signed.status_code == 303  # ...did not use the link up
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/app" in cookie
        assert "Secure" not in cookie  # on loopback only
        assert (await b.get("/app/patients")).status_code == 200
    async with browser(world) as other:
        again = await other.http.post(
            "/app/signin", data={"token": token}, headers={"Origin": ORIGIN}
        )
        assert again.status_code == 400 and "expired or was used already" in again.text
        assert (await other.get("/app/patients")).status_code == 401


async def test_the_cookie_is_secure_off_loopback(world: World) -> None:
    therapist = await world.therapist()
    token = await dashboard_link(world, therapist)
    async with browser(world) as b:
        b.http.base_url = "https://kap.example.org"  # type: ignore[assignment]
        signed = await b.http.post(
            "/app/signin", data={"token": token}, headers={"Origin": "https://kap.example.org"}
        )
        assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]


async def test_a_link_expires_after_ten_minutes(world: World) -> None:
    therapist = await world.therapist()
    token = await dashboard_link(world, therapist)
    world.clock.advance(timedelta(minutes=10, seconds=1))
    async with browser(world) as b:
        answer = await b.http.post("/app/signin", data={"token": token}, headers={"Origin": ORIGIN})
        assert answer.status_code == 400 and "expired" in answer.text
        assert "set-cookie" not in answer.headers


async def test_sessions_end_after_30_idle_minutes_after_12_hours_and_at_sign_out(
    world: World,
) -> None:
    therapist = await world.therapist()
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        world.clock.advance(timedelta(minutes=29))
        assert (await b.get("/app/patients")).status_code == 200  # activity keeps it alive
        world.clock.advance(timedelta(minutes=31))
        idle = await b.get("/app/patients")
        assert idle.status_code == 401 and "timed out" in idle.text
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        for _ in range(36):  # busy all day, a request every 20 minutes, for 12 hours
            world.clock.advance(timedelta(minutes=20))
            assert (await b.get("/app/patients")).status_code == 200
        world.clock.advance(timedelta(minutes=1))
        assert (await b.get("/app/patients")).status_code == 401  # 12 hours at most
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        out = await b.post("/app/signout")
        assert out.status_code == 200 and "signed out" in out.text
        b.http.cookies.clear()
        assert (await b.get("/app/patients")).status_code == 401
    assert await _audits(world, "workspace.signout") == 1


async def test_a_deactivated_therapists_session_stops_at_the_next_request(world: World) -> None:
    therapist = await world.therapist()
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        async with world.rt.sessions() as session, session.begin():
            await therapists.deactivate(session, ident="Dr Rivera", now=world.clock.now())
        assert (await b.get("/app/patients")).status_code == 401
        assert (
            await b.http.get("/app/patients", headers=mini_app_header(therapist.id, world))
        ).status_code == 403


async def test_the_mini_app_signs_in_with_valid_init_data_only(world: World) -> None:
    therapist = await world.therapist()
    stranger = world.person("Stranger")
    good = mini_app_header(therapist.id, world)
    async with browser(world) as b:
        page = await b.http.get("/app/patients", headers=good)
        assert page.status_code == 200 and "Dr Rivera" in page.text
        assert "Sign out" not in page.text  # no cookie session to end
        # A POST with the header needs no CSRF token: no other site can set that header.
        copied = await b.http.post(
            "/app/templates/copy",
            data={"source": "lib:short"},
            headers=good,
            follow_redirects=True,
        )
        assert copied.status_code == 200 and "short-copy" in copied.text

        fields = dict(parse_qsl(good["Authorization"].removeprefix("tma ")))
        tampered = {**fields, "user": fields["user"].replace(str(therapist.id), str(stranger.id))}
        refused = await b.http.get(
            "/app/patients", headers={"Authorization": f"tma {urlencode(tampered)}"}
        )
        assert refused.status_code == 401
        old = initdata.for_user(
            therapist.id, bot_token=TOKEN, at=world.clock.now() - timedelta(hours=1, seconds=1)
        )
        assert (
            await b.http.get("/app/patients", headers={"Authorization": f"tma {old}"})
        ).status_code == 401
        other_bot = initdata.for_user(therapist.id, bot_token="999:other", at=world.clock.now())
        assert (
            await b.http.get("/app/patients", headers={"Authorization": f"tma {other_bot}"})
        ).status_code == 401
        not_staff = await b.http.get("/app/patients", headers=mini_app_header(stranger.id, world))
        assert not_staff.status_code == 403 and "therapists" in not_staff.text


async def test_dashboard_opens_a_mini_app_and_sets_the_menu_button_with_an_https_url(
    tmp_path: Path,
) -> None:
    async with running("sqlite", tmp_path, public_url="https://kap.example.org") as world:
        therapist = await world.therapist()
        token = await dashboard_link(world, therapist)
        answer = world.last(therapist)
        assert f"https://kap.example.org/app/signin?token={token}" in answer["text"]
        button = answer["reply_markup"]["inline_keyboard"][0][0]
        assert button["web_app"] == {"url": "https://kap.example.org/app"}
        menu = world.state.menu_button(therapist.id)
        assert menu["type"] == "web_app" and menu["web_app"]["url"] == "https://kap.example.org/app"


async def test_only_therapists_get_a_link(world: World) -> None:
    stranger = world.person("Stranger")
    await world.say(stranger, "/dashboard")
    assert "/app/signin" not in world.last(stranger)["text"]
    async with world.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WorkspaceLink)) == 0


# --- what every response carries -----------------------------------------------------------


async def test_pages_carry_a_strict_csp_and_no_store_and_assets_are_pinned(world: World) -> None:
    therapist = await world.therapist()
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        page = await b.get("/app/patients")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "default-src 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text and " style=" not in page.text
        for asset in web.ASSETS.values():
            assert f'src="{asset.url}" integrity="{asset.integrity}"' in page.text or (
                f'href="{asset.url}" integrity="{asset.integrity}"' in page.text
            )
            got = await b.http.get(asset.url)
            assert got.content == asset.body
            assert "immutable" in got.headers["cache-control"]
        assert (
            "no-store" not in (await b.http.get(web.ASSETS["app.js"].url)).headers["cache-control"]
        )
        assert (await b.http.get("/app/static/../web.py")).status_code == 404


async def test_a_post_without_its_token_or_from_another_site_changes_nothing(world: World) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    lake = await _patient_id(world, "lake")
    first = (await world.deliveries("lake"))[0]
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        path = f"/app/patients/{lake}/deliveries/{first.id}/skip"
        no_token = await b.http.post(path, data={"version": "0"}, headers={"Origin": ORIGIN})
        assert no_token.status_code == 403 and "out of date" in no_token.text
        forged = await b.http.post(
            path, data={"csrf": b.csrf}, headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403 and "another site" in forged.text
    assert (await world.deliveries("lake"))[0].state is DeliveryState.SCHEDULED


# --- ownership ----------------------------------------------------------------------------------


async def test_a_therapist_never_sees_or_changes_another_therapists_patient(world: World) -> None:
    rivera = await world.therapist()
    okafor = await world.therapist("Dr Okafor")
    await world.enrolled_patient(rivera, "lake")
    await world.say(rivera, "/session lake")
    lake = await _patient_id(world, "lake")
    first = (await world.deliveries("lake"))[0]
    reads = await _audits(world, "patient.card")
    async with browser(world) as b:
        await sign_in(world, okafor, b)
        listing = await b.get("/app/patients")
        assert "lake" not in listing.text
        for path in (f"/app/patients/{lake}", f"/app/patients/{lake}/chart.svg"):
            answer = await b.get(path)
            assert answer.status_code == 404 and "lake" not in answer.text
        for verb in ("skip", "send", "hour"):
            changed = await b.post(f"/app/patients/{lake}/deliveries/{first.id}/{verb}",
                                   version=str(int(first.due_at.timestamp())))  # fmt: skip
            assert changed.status_code in (400, 404)
        # Her own patient's id with his delivery: found for neither.
        await world.enrolled_patient(okafor, "reed")
        reed = await _patient_id(world, "reed")
        mixed = await b.post(f"/app/patients/{reed}/deliveries/{first.id}/skip",
                             version=str(int(first.due_at.timestamp())))  # fmt: skip
        assert mixed.status_code in (400, 404)
        assert (await b.post(f"/app/patients/{lake}/pause")).status_code == 404
    assert (await world.deliveries("lake"))[0].state is DeliveryState.SCHEDULED
    assert await _audits(world, "patient.card") == reads  # nothing of lake was read


async def test_a_delivery_of_another_of_my_patients_is_not_found_under_this_one(
    world: World,
) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.enrolled_patient(therapist, "reed")
    await world.say(therapist, "/session lake")
    lake_first = (await world.deliveries("lake"))[0]
    reed = await _patient_id(world, "reed")
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        answer = await b.post(f"/app/patients/{reed}/deliveries/{lake_first.id}/skip",
                              version=str(int(lake_first.due_at.timestamp())))  # fmt: skip
        assert answer.status_code == 404
    assert (await world.deliveries("lake"))[0].state is DeliveryState.SCHEDULED


# --- pages and actions ----------------------------------------------------------------------


async def test_the_patient_page_shows_replies_beside_questions_and_is_audited(world: World) -> None:
    therapist = await world.therapist()
    patient = await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    await world.run_until(world.clock.now() + timedelta(hours=11))
    question = next(m for m in world.state.sent_messages(patient.id) if "force_reply" in str(m))
    answer = "I felt calmer & lighter <b>today</b>"
    await world.say(patient, answer, reply_to=question["message_id"])
    lake = await _patient_id(world, "lake")
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        page = await b.get(f"/app/patients/{lake}")
        assert page.status_code == 200
        assert "I felt calmer &amp; lighter &lt;b&gt;today&lt;/b&gt;" in page.text  # escaped
        assert re.search(r'class="question">[^<]*·', page.text)
        for action in ("patient.card", "schedule.read", "sessions.read", "trends.read",
                       "alerts.list", "workspace.patients"):  # fmt: skip
            assert await _audits(world, action) >= 1, action


async def test_postponing_in_the_workspace_shows_in_the_chats_schedule(world: World) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    lake = await _patient_id(world, "lake")
    reflection = next(d for d in await world.deliveries("lake") if d.prompt_key == "ref-one-word")
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        page = await b.get(f"/app/patients/{lake}")
        version = re.search(
            rf'/deliveries/{reflection.id}/hour">\s*<input[^>]*>\s*<input type="hidden" '
            r'name="version" value="(\d+)"',
            page.text,
        )
        assert version, "the page offers Postpone 1 hour for the reflection"
        moved = await b.post(f"/app/patients/{lake}/deliveries/{reflection.id}/hour",
                             version=version.group(1))  # fmt: skip
        assert moved.status_code == 200, moved.text
        # 21:00 is in lake's quiet hours (21:00-08:00): it goes at their end.
        assert "Moved ref-one-word to Wed 11 Mar 08:00." in moved.text
        stale = await b.post(f"/app/patients/{lake}/deliveries/{reflection.id}/hour",
                             version=version.group(1))  # fmt: skip
        assert stale.status_code == 400  # drawn before the move: not moved twice
    await world.say(therapist, "/schedule lake")
    assert "Wed 11 Mar 08:00 · reflection ref-one-word" in world.last(therapist)["text"]


async def test_plan_move_and_cancel_a_session_pause_resume_and_add(world: World) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    lake = await _patient_id(world, "lake")
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        past = await b.post(f"/app/patients/{lake}/sessions", date="2024-01-01", time="10:00",
                            template="course")  # fmt: skip
        assert past.status_code == 400 and "within 30 days of today" in past.text
        ahead = await b.post(f"/app/patients/{lake}/sessions", date="2028-03-10", time="10:00",
                             template="course")  # fmt: skip
        assert ahead.status_code == 400 and "up to 180 days ahead" in ahead.text
        # Back-dated by a week: most prompts are too late, so it asks before logging.
        late = await b.post(f"/app/patients/{lake}/sessions", date="2026-03-03", time="10:00",
                            template="short")  # fmt: skip
        assert late.status_code == 400 and "Log it anyway" in late.text
        logged = await b.post(f"/app/patients/{lake}/sessions", date="2026-03-03",
                              time="10:00", template="short", confirmed="1")  # fmt: skip
        assert logged.status_code == 200 and "Session logged for lake" in logged.text
        planned = await b.post(f"/app/patients/{lake}/sessions", date="2026-03-17",
                               time="10:00", template="course")  # fmt: skip
        assert planned.status_code == 200 and "Session planned for lake" in planned.text
        found = re.search(r'/sessions/(\d+)/move">.*?name="seen" value="(\d+)"', planned.text,
                          re.DOTALL)  # fmt: skip
        assert found
        session_id, seen = found.groups()
        moved = await b.post(f"/app/patients/{lake}/sessions/{session_id}/move", shift="+1d",
                             seen=seen)  # fmt: skip
        assert moved.status_code == 200 and "Wed 18 Mar 10:00" in moved.text
        bad_shift = await b.post(f"/app/patients/{lake}/sessions/{session_id}/move",
                                 shift="+5y", seen=seen)  # fmt: skip
        assert bad_shift.status_code == 400
        fresh = re.search(r'/sessions/\d+/cancel">.*?name="seen" value="(\d+)"', moved.text,
                          re.DOTALL)  # fmt: skip
        assert fresh
        cancelled = await b.post(f"/app/patients/{lake}/sessions/{session_id}/cancel",
                                 seen=fresh.group(1))  # fmt: skip
        assert cancelled.status_code == 200 and "cancelled" in cancelled.text.lower()

        paused = await b.post(f"/app/patients/{lake}/pause")
        assert paused.status_code == 200 and "Paused lake" in paused.text
        assert (await b.post(f"/app/patients/{lake}/pause")).status_code == 400  # already
        resumed = await b.post(f"/app/patients/{lake}/resume")
        assert resumed.status_code == 200 and "Resume messages" not in resumed.text

        bad = await b.post(f"/app/patients/{lake}/add", offset="soon", what="ref-one-word")
        assert bad.status_code == 400 and 'value="soon"' in bad.text  # kept for correcting
        added = await b.post(f"/app/patients/{lake}/add", offset="+2h",
                             what="What helped you most today?")  # fmt: skip
        assert added.status_code == 200
    await world.say(therapist, "/sessions lake")
    assert "cancelled" in world.last(therapist)["text"]
    custom = [d for d in await world.deliveries("lake") if d.custom_text_enc is not None]
    assert len(custom) == 1 and b"What helped" not in custom[0].custom_text_enc  # encrypted


async def test_a_delivery_whose_outcome_is_unknown_can_be_sent_again(world: World) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    await world.say(therapist, "/session lake")
    lake = await _patient_id(world, "lake")
    first = (await world.deliveries("lake"))[0]
    async with world.rt.sessions() as session, session.begin():
        row = await session.get(Delivery, first.id)
        assert row is not None
        row.state, row.sent_at = DeliveryState.UNKNOWN, world.clock.now()
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        page = await b.get(f"/app/patients/{lake}")
        assert "it is never re-sent automatically" in page.text
        version = re.search(
            rf'/deliveries/{first.id}/again">\s*<input[^>]*>\s*<input type="hidden" '
            r'name="version" value="(\d+)"',
            page.text,
        )
        assert version
        again = await b.post(f"/app/patients/{lake}/deliveries/{first.id}/again",
                             version=version.group(1))  # fmt: skip
        assert again.status_code == 200 and "Sending edu-after-session again now." in again.text
    async with world.rt.sessions() as session:
        state = await session.scalar(select(Delivery.state).where(Delivery.id == first.id))
    assert state is not DeliveryState.UNKNOWN


async def test_alerts_page_lists_and_acknowledges_an_alert(world: World) -> None:
    therapist = await world.therapist()
    patient = await world.enrolled_patient(therapist, "lake")
    await world.say(patient, "i want to end my life")
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        listing = await b.get("/app/alerts")
        assert "i want to end my life" in listing.text
        alert_id = re.search(r"/app/alerts/(\d+)/ack", listing.text)
        assert alert_id
        done = await b.post(f"/app/alerts/{alert_id.group(1)}/ack")
        assert done.status_code == 200 and "Dr Rivera" in done.text
        assert "i want to end my life" not in done.text
    async with world.rt.sessions() as session:
        alert = await session.scalar(select(Alert))
        assert alert is not None and alert.acknowledged_as == "therapist"


async def test_an_own_template_is_checked_like_a_file_used_in_session_and_exported(
    world: World, tmp_path: Path
) -> None:
    therapist = await world.therapist()
    await world.enrolled_patient(therapist, "lake")
    async with browser(world) as b:
        await sign_in(world, therapist, b)
        copied = await b.post("/app/templates/copy", source="lib:short")
        assert copied.status_code == 200 and 'value="short-copy"' in copied.text
        template_id = re.search(r'action="/app/templates/(\d+)"', copied.text)
        assert template_id
        path = f"/app/templates/{template_id.group(1)}"
        form = _form_rows(copied.text)
        form["name"] = "my-week"
        bad = dict(form, every=["0d", *form["every"][1:]], count=["61", *form["count"][1:]])
        refused = await b.http.post(path, data={**bad, "csrf": b.csrf}, headers={"Origin": ORIGIN})
        assert refused.status_code == 400
        assert "templates/my-week.yaml:" in refused.text
        assert "every: bad repeat &#39;0d&#39;: it must be at least 1d" in refused.text
        assert "count 61 is out of range: use 1 to 60" in refused.text
        assert 'class="has-problem"' in refused.text
        library = await b.http.post(path, data={**form, "name": "standard", "csrf": b.csrf},
                                    headers={"Origin": ORIGIN})  # fmt: skip
        assert library.status_code == 400 and "library template" in library.text
        saved = await b.http.post(path, data={**form, "csrf": b.csrf}, headers={"Origin": ORIGIN})
        assert saved.status_code == 200 and "Saved “my-week”" in saved.text
        preview = await b.http.post(
            "/app/templates/preview",
            data={**form, "preview_date": "2026-03-20", "preview_time": "10:00",
                  "preview_zone": "Europe/Berlin", "csrf": b.csrf},
            headers={"Origin": ORIGIN},
        )  # fmt: skip
        assert preview.status_code == 200 and "Fri 20 Mar" in preview.text
        exported = await b.http.get(f"{path}/export")
        assert exported.headers["content-disposition"] == 'attachment; filename="my-week.yaml"'
    folder = tmp_path / "clinic"
    (folder / "templates").mkdir(parents=True)
    (folder / "templates" / "my-week.yaml").write_text(exported.text)
    from bot.domain.content import builtin_dir

    library_and_mine, problems = check_content([builtin_dir(), folder])
    assert problems == [] and library_and_mine is not None  # promotable unchanged
    await world.say(therapist, "/templates")
    assert "my-week" in world.last(therapist)["text"]
    await world.say(therapist, "/session lake my-week")
    assert (
        "Session logged for lake at Tue 10 Mar 10:00 (America/New_York), template my-week."
        in world.last(therapist)["text"]
    )
    async with world.rt.sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(OwnTemplate))
        assert rows == 1


async def test_another_therapists_template_is_not_found_and_not_usable(world: World) -> None:
    rivera = await world.therapist()
    okafor = await world.therapist("Dr Okafor")
    await world.enrolled_patient(okafor, "reed")
    async with browser(world) as b:
        await sign_in(world, rivera, b)
        copied = await b.post("/app/templates/copy", source="lib:short")
        template_id = re.search(r'action="/app/templates/(\d+)"', copied.text)
        assert template_id
    async with browser(world) as b:
        await sign_in(world, okafor, b)
        for path in (f"/app/templates/{template_id.group(1)}",
                     f"/app/templates/{template_id.group(1)}/export"):  # fmt: skip
            assert (await b.get(path)).status_code == 404
    await world.say(okafor, "/session reed short-copy")
    assert "There is no template" in world.last(okafor)["text"]


# --- the therapist's language -----------------------------------------------------------------


async def _set_language(world: World, therapist: EmuUser, language: str | None) -> None:
    async with world.rt.sessions() as session, session.begin():
        row = await session.scalar(
            select(Therapist).where(Therapist.telegram_user_id == therapist.id)
        )
        assert row is not None
        row.language = language


async def _language(world: World, therapist: EmuUser) -> str | None:
    async with world.rt.sessions() as session:
        return await session.scalar(
            select(Therapist.language).where(Therapist.telegram_user_id == therapist.id)
        )


class _Quoted(gettext.NullTranslations):
    """A "catalogue" that shows which texts were looked up: «text»."""

    def gettext(self, message: str) -> str:
        return f"«{message}»"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"«{msgid1 if n == 1 else msgid2}»"


async def test_pages_are_in_the_signed_in_therapists_language(world: World) -> None:
    rivera = await world.therapist(language_code="de")
    okafor = await world.therapist("Dr Okafor")
    async with browser(world) as b:
        before = await b.get("/app/signin?token=x")  # not signed in: the clinic's default
        assert '<html lang="en">' in before.text
        await sign_in(world, rivera, b)
        await _set_language(world, rivera, "de")
        page = await b.get("/app/patients")
        assert page.status_code == 200 and '<html lang="de">' in page.text
        assert page.headers["content-language"] == "de"  # the Mini App's script reads it
        await _set_language(world, rivera, "fr")  # not offered (any more): the default
        assert '<html lang="en">' in (await b.get("/app/patients")).text
    async with browser(world) as b:
        await sign_in(world, okafor, b)
        await _set_language(world, okafor, None)  # never wrote in a language: the default
        assert '<html lang="en">' in (await b.get("/app/templates")).text


async def test_page_texts_are_looked_up_in_the_catalogue_at_request_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rivera = await world.therapist()
    okafor = await world.therapist("Dr Okafor")
    await world.enrolled_patient(rivera, "lake")
    await world.say(rivera, "/session lake")
    lake = await _patient_id(world, "lake")
    real = i18n._catalogue
    monkeypatch.setattr(
        i18n, "_catalogue", lambda language: _Quoted() if language == "de" else real(language)
    )
    async with browser(world) as german, browser(world) as english:
        await sign_in(world, rivera, german)
        await sign_in(world, okafor, english)
        await _set_language(world, rivera, "de")
        await _set_language(world, okafor, "en")
        listing = await german.get("/app/patients")
        assert "<title>«Patients» · Afterglow</title>" in listing.text
        assert "<h1>«Patients»</h1>" in listing.text
        assert ">«Sign out»</button>" in listing.text and ">«Templates»</a>" in listing.text
        assert "«Pseudonym»</a>" in listing.text  # a column built in Python
        card = await german.post(f"/app/patients/{lake}/sessions", date="2026-03-17",
                                 time="10:00", template="course")  # fmt: skip
        assert card.status_code == 200, card.text
        assert '<h2 id="sessions-h">«Sessions»</h2>' in card.text
        assert "«Cancel this session and its {n} prompts?" not in card.text  # filled in
        assert re.search(r"«Cancel this session and its \d+ prompts\?", card.text)
        assert "<h1>«Templates»</h1>" in (await german.get("/app/templates")).text
        missing = await german.get("/app/patients/999999")
        assert missing.status_code == 404 and "<h1>«Not found»</h1>" in missing.text
        # The same Environment, another therapist, the same moment: English.
        other = await english.get("/app/patients")
        assert "<h1>Patients</h1>" in other.text and "«" not in other.text
    assert i18n.current() == "en"  # a request's language stays in the request


async def test_the_mini_app_stores_the_telegram_language_it_is_opened_in(world: World) -> None:
    therapist = await world.therapist()
    await _set_language(world, therapist, "en")
    async with browser(world) as b:

        def header(language_code: str | None) -> dict[str, str]:
            data = initdata.for_user(
                therapist.id, bot_token=TOKEN, at=world.clock.now(), language_code=language_code
            )
            return {"Authorization": f"tma {data}"}

        page = await b.http.get("/app/patients", headers=header("es-MX"))
        assert page.status_code == 200 and '<html lang="es">' in page.text
        assert await _language(world, therapist) == "es"
        unknown = await b.http.get("/app/patients", headers=header("fr"))  # not offered
        assert '<html lang="es">' in unknown.text and await _language(world, therapist) == "es"
        assert '<html lang="es">' in (await b.http.get("/app/alerts", headers=header(None))).text
        stranger = world.person("Stranger", language_code="de")
        refused = await b.http.get(
            "/app/patients",
            headers={
                "Authorization": "tma "
                + initdata.for_user(
                    stranger.id, bot_token=TOKEN, at=world.clock.now(), language_code="de"
                )
            },
        )
        assert refused.status_code == 403 and '<html lang="de">' in refused.text


def _form_rows(page: str) -> dict[str, list[str] | str]:
    """The editor's step fields as the browser would post them."""
    rows: dict[str, list[str] | str] = {}
    for name in ("key", "offset", "every", "count", "remind", "expires"):
        rows[name] = re.findall(rf'name="{name}" value="([^"]*)"', page)
    kinds = re.findall(r'<select id="k\d+" name="kind">(.*?)</select>', page, re.DOTALL)
    rows["kind"] = [
        "questionnaire" if 'value="questionnaire" selected' in k else "prompt" for k in kinds
    ]
    rows["description"] = re.search(r'name="description" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    return rows


@pytest.mark.parametrize("backend", backends())
async def test_sign_in_and_a_page_on_each_database(backend: str, tmp_path: Path) -> None:
    async with running(backend, tmp_path) as world:
        therapist = await world.therapist()
        await world.enrolled_patient(therapist, "lake")
        await world.say(therapist, "/session lake")
        patient_id = await _patient_id(world, "lake")
        async with browser(world) as b:
            await sign_in(world, therapist, b)
            listing = await b.get("/app/patients")
            assert "lake" in listing.text
            page = await b.get(f"/app/patients/{patient_id}")
            assert page.status_code == 200 and "edu-after-session" in page.text
            skipped = (await world.deliveries("lake"))[1]
            done = await b.post(f"/app/patients/{patient_id}/deliveries/{skipped.id}/skip",
                                version=str(int(skipped.due_at.timestamp())))  # fmt: skip
            assert done.status_code == 200
        async with world.rt.sessions() as session:
            state = await session.scalar(select(Delivery.state).where(Delivery.id == skipped.id))
        assert state is DeliveryState.SKIPPED

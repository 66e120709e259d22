"""Languages through the running bot: the choice at the start, /settings, prompts and crisis
resources in the patient's language, a missing translation, a language taken away."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from bot.app import languages_still_offered
from bot.db.models import DeliveryState, Patient, PatientStatus, Therapist
from bot.dispatch import staff
from bot.domain.content import load_content
from bot.services import therapists
from tests.integration.world import LINK, World, close_world, make_world, running
from tests.support.pg import backends


@pytest.fixture(params=backends())
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path) as w:
        yield w


async def _patient(world: World, pseudonym: str) -> Patient:
    async with world.rt.sessions() as session:
        found = await session.scalar(select(Patient).where(Patient.pseudonym == pseudonym))
        assert found is not None
        return found


def _labels(message: dict[str, object]) -> list[str]:
    markup = message.get("reply_markup") or {}
    assert isinstance(markup, dict)
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def _plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


async def test_onboarding_starts_with_the_language_telegram_suggests(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/invite lago")
    link = LINK.search(world.last(dr)["text"])
    assert link is not None
    ana = world.person("Ana", language_code="es-MX")
    await world.state.open_link(ana, link.group(0))
    await world.feed()
    picker = world.last(ana)
    assert _labels(picker) == ["Español", "English", "Deutsch"]  # Telegram's language first

    await world.tap(ana, picker["message_id"], "Español")
    consent = world.last(ana)
    assert consent["text"].startswith("Te damos la bienvenida a Afterglow")
    assert _labels(consent) == ["Acepto", "No, gracias"]
    async with world.rt.sessions() as session:  # nothing is stored before she agrees
        assert (await session.scalar(select(Patient.language))) == "en"

    await world.tap(ana, consent["message_id"], "Acepto")
    assert "¿en qué zona horaria estás?" in world.last(ana)["text"]
    await world.say(ana, "Chicago")
    assert world.last(ana)["text"].startswith("Todo listo.")
    patient = await _patient(world, "lago")
    assert patient.language == "es"
    assert patient.consent_version == "2026-11.es"  # a consent in Spanish is its own text


async def test_a_language_telegram_has_that_we_do_not_offers_the_default_first(
    world: World,
) -> None:
    dr = await world.therapist()
    await world.say(dr, "/invite roc")
    link = LINK.search(world.last(dr)["text"])
    assert link is not None
    marie = world.person("Marie", language_code="fr")
    await world.state.open_link(marie, link.group(0))
    await world.feed()
    assert _labels(world.last(marie)) == ["English", "Español", "Deutsch"]
    consent = await world.open_invite(marie, link.group(0))  # the link again: same screen
    assert "Welcome to Afterglow" in consent["text"]


async def test_prompts_buttons_and_acknowledgements_come_in_the_patients_language(
    world: World,
) -> None:
    dr = await world.therapist()
    ana = await world.enrolled_patient(
        dr, "lago", "America/Chicago", language="Español", agree="Acepto", all_set="Todo listo"
    )
    await world.say(dr, "/session lago")
    await world.tick()
    first = world.last(ana)
    spanish = load_content().in_language("es").prompt("edu-after-session")
    assert first["text"] == spanish.text.strip()
    assert "Necesito ayuda ahora" in _labels(first)

    # The evening reflection, answered: the thanks is in Spanish too.
    await world.run_until(world.clock.now() + timedelta(hours=12))
    sent = [d for d in await world.deliveries("lago") if d.state is DeliveryState.SENT]
    reflection = next(d for d in sent if d.kind.value == "reflection")
    await world.say(ana, "Me sentí ligera.", reply_to=reflection.telegram_message_id)
    assert world.last(ana)["text"].startswith("Gracias, lo guardé como tu respuesta a “")


async def test_settings_change_the_language_and_refuse_one_not_offered(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    await world.say(pat, "/settings language fr")
    assert "That language isn't offered here" in world.last(pat)["text"]
    assert (await _patient(world, "oak")).language == "en"

    await world.say(pat, "/settings language de")
    assert world.last(pat)["text"] == "Ab jetzt schreibe ich dir auf Deutsch."
    assert (await _patient(world, "oak")).language == "de"

    await world.say(pat, "/settings")
    card = world.last(pat)
    assert "Sprache: Deutsch" in card["text"]
    await world.tap(pat, card["message_id"], "English")
    assert (await _patient(world, "oak")).language == "en"


async def test_crisis_resources_follow_language_and_country(world: World) -> None:
    dr = await world.therapist()
    ana = await world.enrolled_patient(
        dr, "lago", "America/Mexico_City", language="Español", agree="Acepto", all_set="Todo"
    )
    await world.say(ana, "/crisis")
    assert "800 911 2000" in world.last(ana)["text"]  # Mexico's line, in Spanish

    lena = await world.enrolled_patient(
        dr, "fluss", "Europe/Vienna", language="Deutsch", agree="Ich stimme zu", all_set="Alles"
    )
    await world.say(lena, "ich will nicht mehr leben")  # caught by the German list
    resources = _plain(world.state.sent_messages(lena.id)[-1]["text"])
    assert "142" in resources and "Telefonseelsorge" in resources  # Austria
    assert "Safety alert" in world.last(dr)["text"]

    # Someone with no record yet gets their Telegram language's text.
    stranger = world.person("Sol", language_code="es")
    await world.say(stranger, "/crisis")
    assert "988" in world.last(stranger)["text"] and "AYUDA" in world.last(stranger)["text"]


async def test_spanish_crisis_words_from_an_english_patient_still_alert(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    await world.say(pat, "la neta ya no quiero vivir")
    assert "Safety alert" in world.last(dr)["text"]
    assert "988" in world.state.sent_messages(pat.id)[-1]["text"]  # in her own language: en


async def test_a_prompt_missing_in_the_patients_language_goes_in_english_and_is_counted(
    tmp_path: Path,
) -> None:
    clinic = tmp_path / "clinic"
    (clinic / "prompts").mkdir(parents=True)
    (clinic / "templates").mkdir()
    (clinic / "prompts" / "edu-our-garden.yaml").write_text(
        "key: edu-our-garden\nkind: education\ntopic: integration\nlanguage: en\n"
        "text: Our clinic garden is open on Saturdays.\n"
    )
    (clinic / "templates" / "garden.yaml").write_text(
        "name: garden\ndescription: One note.\nsteps:\n  - offset: '+0m'\n"
        "    prompt: edu-our-garden\n"
    )
    async with running("sqlite", tmp_path, content_dirs=str(clinic)) as world:
        dr = await world.therapist()
        ana = await world.enrolled_patient(
            dr, "lago", "America/Chicago", language="Español", agree="Acepto", all_set="Todo"
        )
        before = (
            REGISTRY.get_sample_value("afterglow_content_fallback_total", {"language": "es"}) or 0.0
        )
        await world.say(dr, "/session lago garden")
        await world.tick()
        note = world.last(ana)
        assert note["text"] == "Our clinic garden is open on Saturdays."
        assert "Necesito ayuda ahora" in _labels(note)  # the bot's own words still Spanish
        after = REGISTRY.get_sample_value("afterglow_content_fallback_total", {"language": "es"})
        assert after == before + 1


async def test_a_language_taken_out_moves_its_patients_to_the_default_with_one_notice(
    tmp_path: Path,
) -> None:
    async with running("sqlite", tmp_path) as world:
        dr = await world.therapist()
        ana = await world.enrolled_patient(
            dr, "lago", "America/Chicago", language="Español", agree="Acepto", all_set="Todo"
        )
        await world.enrolled_patient(
            dr, "rio", "America/Chicago", language="Español", agree="Acepto", all_set="Todo"
        )
        async with world.rt.sessions() as session, session.begin():  # rio left the service
            rio = await session.scalar(select(Patient).where(Patient.pseudonym == "rio"))
            assert rio is not None
            rio.status = PatientStatus.STOPPED

        # The clinic restarts with Spanish taken out of AFTERGLOW_LANGUAGES (same database).
        settings = world.rt.settings
        restarted = await make_world(
            settings.database_url, languages="en,de", encryption_keys=settings.encryption_keys
        )
        try:
            await languages_still_offered(restarted.rt)
            await languages_still_offered(restarted.rt)  # and again: nothing more
        finally:
            await close_world(restarted)
        assert (await _patient(world, "lago")).language == "en"
        assert (await _patient(world, "rio")).language == "es"  # stopped: left alone
        notices = [d for d in await world.deliveries("lago") if d.custom_text_enc is not None]
        assert len(notices) == 1
        await world.tick()
        text = world.last(ana)["text"]
        assert text.startswith("A note from your clinic: messages in Español are no longer")


async def test_menus_per_language_and_per_chat(world: World) -> None:
    from bot.telegram.menus import publish_patient_menus

    settings = world.rt.settings
    await publish_patient_menus(
        world.app.bot, settings.offered_languages, settings.default_language, show_progress=False
    )
    german = {c["command"]: c["description"] for c in world.state.commands(language_code="de")}
    assert german["settings"] == "Sprache, Zeitzone und Ruhezeiten"
    assert world.state.commands()[0]["description"] == "What this bot does and your options"

    dr = await world.therapist()
    await world.say(dr, "/start")  # a therapist opening the bot: therapist commands there
    mine = [c["command"] for c in world.state.commands({"type": "chat", "chat_id": dr.id})]
    assert "patients" in mine and "invite" in mine

    ana = await world.enrolled_patient(
        dr, "lago", "America/Chicago", language="Español", agree="Acepto", all_set="Todo"
    )
    chat_menu = world.state.commands({"type": "chat", "chat_id": ana.id})
    assert chat_menu[0]["description"] == "Qué hace este bot y tus opciones"
    await world.say(ana, "/settings language de")
    chat_menu = world.state.commands({"type": "chat", "chat_id": ana.id})
    assert chat_menu[0]["description"] == "Was dieser Bot macht und was du tun kannst"


async def test_a_therapist_gets_alerts_and_notices_in_their_telegram_language(
    world: World,
) -> None:
    """The therapist's Telegram language (de) is stored from their messages, so an alert the
    dispatcher sends later is worded in German — about an English-speaking patient, whose
    own crisis text stays English; the on-call chat and a therapist who never wrote get the
    clinic's default."""
    dr = await world.therapist("Dr Weber", language_code="de-AT")
    pat = await world.enrolled_patient(dr, "oak")
    async with world.rt.sessions() as session:
        stored = await session.scalar(select(Therapist.language))
    assert stored == "de"

    await world.say(pat, "I want to kill myself")
    alert = world.last(dr)
    assert alert["text"].startswith("Sicherheitsalarm")
    assert "oak" in alert["text"]
    assert "988" in world.state.sent_messages(pat.id)[-1]["text"]  # the patient's: English

    # She switches Telegram to English: the next message stores that, alerts follow.
    menu = world.state.commands({"type": "chat", "chat_id": dr.id})
    assert menu[0]["description"] != "Your patients, their status and next prompt"

    dr_en = world.state.user(dr.id, "Dr Weber", language_code="en")
    await world.say(dr_en, "/patients")
    await world.say(pat, "I want to end my life tonight")
    assert world.last(dr)["text"].startswith("Safety alert")
    menu = world.state.commands({"type": "chat", "chat_id": dr.id})
    assert menu[0]["description"] == "Your patients, their status and next prompt"


async def test_a_deactivated_therapist_loses_the_staff_menu_at_their_next_message(
    world: World,
) -> None:
    dr = await world.therapist()
    await world.say(dr, "/start")
    assert world.state.commands({"type": "chat", "chat_id": dr.id})[0]["command"] == "patients"
    async with world.rt.sessions() as session, session.begin():
        therapist = await session.scalar(select(Therapist))
        assert therapist is not None
        await therapists.deactivate(session, ident=str(therapist.id), now=world.clock.now())
    await world.say(dr, "/patients")
    assert world.state.commands({"type": "chat", "chat_id": dr.id}) == world.state.commands()


async def test_a_therapists_language_is_the_default_until_they_write(world: World) -> None:
    dr = await world.therapist("Dr Weber", language_code="de")
    async with world.rt.sessions() as session, session.begin():
        await session.execute(update(Therapist).values(language=None))
    assert await staff.language_of(world.rt, dr.id) == "en"
    assert await staff.language_of(world.rt, None) == "en"
    assert await staff.language_of(world.rt, 424242) == "en"  # no therapist has that chat


async def test_a_german_therapist_reads_the_console_in_german(world: World) -> None:
    """Therapist texts follow the therapist's Telegram language, dates included; the
    patient's own prompt stays in the patient's language."""
    dr = await world.therapist("Dr Weber", language_code="de")
    pat = await world.enrolled_patient(dr, "oak")
    await world.say(dr, "/patients")
    listing = _plain(world.last(dr)["text"])
    assert listing.startswith("Ihre Patient:innen (1)")
    assert "Your patients" not in listing
    await world.say(dr, "/session oak")
    reply = _plain(world.last(dr)["text"])
    assert "Session logged" not in reply
    assert re.search(r"(Mo|Di|Mi|Do|Fr|Sa|So)\., \d{1,2}\. ", reply), reply  # a German date
    await world.say(dr, "/session")
    assert "Usage" not in world.last(dr)["text"]
    texts_before = len(world.texts(pat))
    await world.run_until(world.clock.now() + timedelta(hours=3))
    assert len(world.texts(pat)) > texts_before
    assert all("Sitzung" not in t for t in world.texts(pat)[texts_before:])

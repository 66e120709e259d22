"""The emulator core through a real PTB Bot, using the in-process FakeBotApi."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.emulator import BotApiState, EmuUser, render_transcript
from bot.emulator.request import FakeBotApi, fake_application_builder, feed_updates

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> BotApiState:
    return BotApiState(clock=clock)


@pytest.fixture
async def bot(state: BotApiState) -> AsyncIterator[Bot]:
    async with Bot(
        state.token, request=FakeBotApi(state), get_updates_request=FakeBotApi(state)
    ) as bot:
        yield bot


@pytest.fixture
async def alice(state: BotApiState) -> EmuUser:
    person = state.user(1001, "Alice", username="alice")
    await state.send_text(person, "hello")  # a chat exists only once the person wrote
    state.drain_updates()
    return person


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in pairs]])


def seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --------------------------------------------------------------------------- bot side


async def test_get_me_initializes_the_bot(bot: Bot, state: BotApiState) -> None:
    assert bot.username == "afterglow_test_bot"
    assert bot.id == 123456
    assert [call.method for call in state.calls] == ["getMe"]


async def test_wrong_token_is_unauthorized(state: BotApiState) -> None:
    with pytest.raises(InvalidToken):
        async with Bot(
            "999:WRONG", request=FakeBotApi(state), get_updates_request=FakeBotApi(state)
        ):
            pass


async def test_send_message_records_markup_and_protection(
    bot: Bot, state: BotApiState, alice: EmuUser, clock: Clock
) -> None:
    sent = await bot.send_message(
        alice.id,
        "<b>How are you?</b>",
        parse_mode="HTML",
        reply_markup=keyboard(("Good", "m:1"), ("Low", "m:2")),
        protect_content=True,
    )
    assert sent.text == "How are you?"
    assert sent.entities[0].type == "bold"
    assert sent.has_protected_content is True
    assert sent.date == START
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "m:2"
    (call,) = state.calls_to("sendmessage")
    assert call.params["protect_content"] is True
    assert call.params["text"] == "<b>How are you?</b>"
    (message,) = state.sent_messages(alice.id)
    assert message["message_id"] == sent.message_id == 2  # ids are per chat: "hello" was 1
    assert message["has_protected_content"] is True


async def test_force_reply_is_recorded_but_not_echoed(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    sent = await bot.send_message(alice.id, "What stood out?", reply_markup=ForceReply())
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    assert state.last_sent(alice.id)["reply_markup"] == {"force_reply": True}


async def test_edits_replace_text_and_drop_omitted_keyboard(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    sent = await bot.send_message(alice.id, "Mood?", reply_markup=keyboard(("5", "m:5")))
    edited = await bot.edit_message_text("Mood? You chose 5", alice.id, sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "Mood? You chose 5"
    assert edited.reply_markup is None
    assert edited.edit_date is not None
    await bot.edit_message_reply_markup(
        alice.id, sent.message_id, reply_markup=keyboard(("x", "x"))
    )
    (current,) = state.sent_messages(alice.id)
    assert current["text"] == "Mood? You chose 5"
    assert current["reply_markup"]["inline_keyboard"][0][0]["text"] == "x"
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(
            alice.id, sent.message_id, reply_markup=keyboard(("x", "x"))
        )
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("nope", alice.id, 999)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("<blink>x</blink>", 'unsupported start tag "blink"'),
        ("<b>open", "can't find end tag"),
        ("<b><i>x</b></i>", "unmatched end tag"),
        ("x</b>", "unexpected end tag"),
        ('<span class="red">x</span>', "must have class"),
    ],
)
async def test_bad_html_is_rejected(bot: Bot, alice: EmuUser, text: str, detail: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(alice.id, text, parse_mode="HTML")
    assert "can't parse entities" in caught.value.message.lower()
    assert detail in caught.value.message.lower()


async def test_html_entities_and_utf16_offsets(bot: Bot, alice: EmuUser) -> None:
    sent = await bot.send_message(
        alice.id,
        '🌿 <i>a &amp; b</i> &lt;3 AT&T <a href="https://x.org">link</a>'
        ' <pre><code class="language-py">x</code></pre> <tg-spoiler>s</tg-spoiler>',
        parse_mode="HTML",
    )
    assert sent.text == "🌿 a & b <3 AT&T link x s"
    kinds = {e.type: (e.offset, e.length) for e in sent.entities}
    assert kinds["italic"] == (3, 5)  # the emoji is two UTF-16 code units
    assert kinds["text_link"] == (17, 4)
    pre = next(e for e in sent.entities if e.type == "pre")
    assert pre.language == "py"
    assert "spoiler" in kinds


async def test_length_limit_counts_visible_characters(bot: Bot, alice: EmuUser) -> None:
    await bot.send_message(alice.id, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(alice.id, "a" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(alice.id, "  ")


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot, alice: EmuUser) -> None:
    await bot.send_message(alice.id, "ok", reply_markup=keyboard(("a", "x" * 64)))
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(alice.id, "no", reply_markup=keyboard(("a", "é" * 33)))


async def test_unknown_chat_and_method(bot: Bot, state: BotApiState) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(4242, "hi")
    status, body = await state.call("sendPigeon", {})
    assert (status, body["description"]) == (404, "Not Found: method not found")
    status, body = await state.call("GETME", {})
    assert status == 200 and body["result"]["username"] == "afterglow_test_bot"


async def test_documents_keep_name_and_bytes(bot: Bot, state: BotApiState, alice: EmuUser) -> None:
    sent = await bot.send_document(
        alice.id, InputFile(b"when,answer\n", filename="replies.csv"), caption="Your data"
    )
    assert sent.document is not None and sent.document.file_name == "replies.csv"
    again = await bot.send_document(alice.id, sent.document.file_id)
    assert again.document is not None and again.document.file_size == 12
    first, second = state.sent_documents(alice.id)
    assert (first.filename, first.content, first.caption) == (
        "replies.csv",
        b"when,answer\n",
        "Your data",
    )
    assert second.content == first.content


async def test_commands_and_webhook_calls(bot: Bot, state: BotApiState) -> None:
    assert await bot.set_my_commands([("help", "What I can do"), ("pause", "Pause prompts")])
    assert [c.command for c in await bot.get_my_commands()] == ["help", "pause"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Bad-Name", "x")])
    assert await bot.delete_my_commands()
    assert state.commands() == []
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).url == ""


# ------------------------------------------------------------------------- faults


async def test_injected_errors_raise_ptb_exceptions(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    state.fail("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(alice.id, "x")
    assert seconds(flood.value.retry_after) == 7
    state.fail("sendMessage", status=403)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(alice.id, "x")
    state.fail("sendMessage", status=400, description="Bad Request: custom")
    with pytest.raises(BadRequest, match="Custom"):
        await bot.send_message(alice.id, "x")
    state.fail("sendMessage", status=502)
    with pytest.raises(NetworkError):
        await bot.send_message(alice.id, "x")
    await bot.send_message(alice.id, "after the faults")
    assert [c.status for c in state.calls_to("sendMessage")] == [429, 403, 400, 502, 200]


async def test_timeout_fault_can_still_deliver(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    state.fail("sendMessage", exception=TimedOut)
    with pytest.raises(TimedOut):
        await bot.send_message(alice.id, "lost")
    state.fail("sendMessage", exception=TimedOut, delivered=True)
    with pytest.raises(TimedOut):
        await bot.send_message(alice.id, "arrived, answer lost")
    assert [m["text"] for m in state.sent_messages(alice.id)] == ["arrived, answer lost"]


async def test_fault_filters_by_chat_and_count(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    bob = state.user(1002, "Bob")
    await state.send_text(bob, "hi")
    state.fail("sendMessage", status=403, chat_id=bob.id, times=2)
    await bot.send_message(alice.id, "fine")
    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(bob.id, "x")
    await bot.send_message(bob.id, "fine again")


async def test_fail_ratio_is_reproducible(state: BotApiState, alice: EmuUser) -> None:
    async def outcomes() -> list[int]:
        return [
            (await state.call("sendMessage", {"chat_id": alice.id, "text": "x"}))[0]
            for _ in range(20)
        ]

    state.fail_ratio("sendMessage", 0.5, seed=3)
    first = await outcomes()
    state.clear_faults()
    state.fail_ratio("sendMessage", 0.5, seed=3)
    assert await outcomes() == first
    assert set(first) == {200, 429}


async def test_blocking_gives_403_and_member_updates(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    blocked = Update.de_json(await state.block(alice), bot)
    assert blocked.my_chat_member is not None
    assert blocked.my_chat_member.old_chat_member.status == "member"
    assert blocked.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "x")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(alice.id, "typing")
    restored = Update.de_json(await state.unblock(alice.id), bot)
    assert restored.my_chat_member is not None
    assert restored.my_chat_member.new_chat_member.status == "member"
    await bot.send_message(alice.id, "welcome back")


# ---------------------------------------------------------------------- person side


async def test_text_reply_and_media_updates_parse(
    bot: Bot, state: BotApiState, alice: EmuUser
) -> None:
    question = await bot.send_message(alice.id, "What stood out?", reply_markup=ForceReply())
    data = await state.send_text(alice, "The light", reply_to=question.message_id)
    update = Update.de_json(data, bot)
    assert update.message is not None and update.message.text == "The light"
    assert update.message.reply_to_message is not None
    assert update.message.reply_to_message.text == "What stood out?"
    assert update.message.reply_to_message.from_user is not None
    assert update.message.reply_to_message.from_user.is_bot
    voice = Update.de_json(await state.send_voice(alice), bot).message
    photo = Update.de_json(await state.send_photo(alice, caption="sky"), bot).message
    sticker = Update.de_json(await state.send_sticker(alice), bot).message
    assert voice is not None and voice.voice is not None
    assert photo is not None and photo.photo and photo.caption == "sky"
    assert sticker is not None and sticker.sticker is not None
    ids = [u["update_id"] for u in state.pending_updates]
    assert ids == sorted(ids) and len(ids) == 4


async def test_deep_link_start_reaches_command_handler(state: BotApiState) -> None:
    seen: list[list[str]] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(list(context.args or []))
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "Welcome")

    app = fake_application_builder(state).build()
    app.add_handler(CommandHandler("start", start))
    dana = state.user(2001, "Dana")
    async with app:
        data = await state.open_link(dana, "https://t.me/afterglow_test_bot?start=TOKEN_123")
        message = Update.de_json(data, app.bot).message
        assert message is not None and message.text == "/start TOKEN_123"
        assert message.entities[0].type == "bot_command" and message.entities[0].length == 6
        await state.send_command(dana, "start")
        assert await feed_updates(app, state) == 2
    assert seen == [["TOKEN_123"], []]
    assert [m["text"] for m in state.sent_messages(dana.id)] == ["Welcome", "Welcome"]


async def test_button_press_and_callback_answer(state: BotApiState) -> None:
    answered: list[str] = []

    async def on_press(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        answered.append(query.data)
        await query.answer("Saved")
        await query.edit_message_text(f"You chose {query.data}")

    app = fake_application_builder(state).build()
    app.add_handler(CallbackQueryHandler(on_press))
    eve = state.user(3001, "Eve")
    async with app:
        await state.send_text(eve, "hi")
        sent = await app.bot.send_message(eve.id, "Mood?", reply_markup=keyboard(("Calm", "c")))
        data = await state.press_button(eve, sent.message_id, "Calm")
        query = Update.de_json(data, app.bot).callback_query
        assert query is not None and isinstance(query.message, Message)
        assert query.message.text == "Mood?"
        await feed_updates(app, state)
        assert state.callback_answer(data["callback_query"]["id"]) is not None
        with pytest.raises(BadRequest, match="Query is too old"):
            await app.bot.answer_callback_query(data["callback_query"]["id"])
        with pytest.raises(LookupError):
            await state.press(eve, sent.message_id, "c")  # the edit removed the keyboard
        forged = await state.press(eve, sent.message_id, "admin:1", check=False)
        assert forged["callback_query"]["data"] == "admin:1"
    assert answered == ["c"]
    assert state.last_sent(eve.id)["text"] == "You chose c"


async def test_transcript_shows_the_conversation(
    bot: Bot, state: BotApiState, alice: EmuUser, clock: Clock
) -> None:
    sent = await bot.send_message(alice.id, "Mood?", reply_markup=keyboard(("Calm", "c")))
    clock.now += timedelta(minutes=5)
    await state.press(alice, sent.message_id, "c")
    await bot.edit_message_text("Mood: calm", alice.id, sent.message_id)
    await bot.send_document(alice.id, InputFile(b"x", filename="export.json"))
    text = render_transcript(state.transcript())
    assert text.splitlines() == [
        "[Mon 03 Mar 09:00] Alice: hello",
        "[Mon 03 Mar 09:00] bot → Alice: Mood?",
        "                                [Calm]",
        "[Mon 03 Mar 09:05] Alice: [pressed: Calm]",
        "[Mon 03 Mar 09:05] bot → Alice: (edited) Mood: calm",
        "[Mon 03 Mar 09:05] bot → Alice: [export.json]",
    ]


# ------------------------------------------------------------------------ getUpdates


async def test_get_updates_offset_confirms(bot: Bot, state: BotApiState, alice: EmuUser) -> None:
    for text in ("one", "two", "three"):
        await state.send_text(alice, text)
    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["one", "two", "three"]
    again = await bot.get_updates(offset=updates[1].update_id)
    assert [u.update_id for u in again] == [updates[1].update_id, updates[2].update_id]
    assert await bot.get_updates(offset=updates[2].update_id + 1) == ()
    assert state.pending_updates == []


async def test_long_poll_wakes_on_new_update(bot: Bot, state: BotApiState, alice: EmuUser) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await state.call("getUpdates", {"timeout": 0.2})
    assert (status, body["result"]) == (200, [])
    assert 0.15 <= loop.time() - started < 0.5

    poll = asyncio.create_task(bot.get_updates(timeout=timedelta(seconds=0.5)))
    await asyncio.sleep(0.05)
    started = loop.time()
    await state.send_text(alice, "are you there?")
    updates = await poll
    assert loop.time() - started < 0.2
    assert updates[0].message is not None and updates[0].message.text == "are you there?"


async def test_second_poller_conflicts_the_first(state: BotApiState) -> None:
    first = asyncio.create_task(state.call("getUpdates", {"timeout": 0.5}))
    await asyncio.sleep(0.02)
    second = await state.call("getUpdates", {"timeout": 0})
    status, body = await first
    assert status == 409 and "terminated by other getUpdates" in body["description"]
    assert second[0] == 200


async def test_drain_updates_feeds_the_application(state: BotApiState) -> None:
    calls: list[Any] = []

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        calls.append(update.update_id)

    app = fake_application_builder(state).build()
    app.add_handler(CommandHandler("help", echo))
    frank = state.user(4001, "Frank")
    async with app:
        await state.send_command(frank, "help")
        assert state.next_update_id == 2
        await feed_updates(app, state)
    assert calls == [1]
    assert state.drain_updates() == []

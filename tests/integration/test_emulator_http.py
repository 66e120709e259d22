"""The emulator over real HTTP: a stock PTB Application polling it, as `afterglow demo` does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bot.emulator import BotApiState, EmulatorServer
from bot.telegram.polling import Poller


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(BotApiState()) as running:
        yield running


async def wait_for(predicate: object, seconds: float = 3.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_polling_application_answers_start(server: EmulatorServer) -> None:
    state = server.state

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(
            update.effective_chat.id,
            f"Hello <b>{len(context.args or [])}</b>",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Agree", callback_data="a")]]),
        )

    app = ApplicationBuilder().token(state.token).base_url(server.base_url).build()
    app.add_handler(CommandHandler("start", start))
    await app.initialize()
    await app.start()
    poller = Poller(app, timeout=1)  # as `afterglow run` polls
    await poller.start()
    try:
        grace = state.user(5001, "Grace")
        await state.send_text(grace, "/start abc")
        await wait_for(lambda: state.sent_messages(grace.id))
        (reply,) = state.sent_messages(grace.id)
        assert reply["text"] == "Hello 1"
        assert reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    finally:
        await poller.stop()
        await app.stop()
        await app.shutdown()
    assert state.calls_to("deleteWebhook")
    assert state.pending_updates == []  # the poller confirmed what it handled


async def test_multipart_document_and_form_encoding(server: EmulatorServer) -> None:
    state = server.state
    henry = state.user(5002, "Henry")
    await state.send_text(henry, "123")
    async with Bot(state.token, base_url=server.base_url) as bot:
        sent = await bot.send_document(
            henry.id,
            InputFile(b"a,b\n1,2\n", filename="export.csv"),
            caption="<i>yours</i>",
            parse_mode="HTML",
            protect_content=True,
        )
        assert sent.document is not None and sent.document.file_name == "export.csv"
        assert sent.caption == "yours" and sent.has_protected_content
        text = await bot.send_message(henry.id, "true")  # a text that looks like JSON
        assert text.text == "true"
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(henry.id, "x" * 4097)
        state.fail("sendMessage", status=429, retry_after=3)
        with pytest.raises(RetryAfter):
            await bot.send_message(henry.id, "x")
        state.fail("sendMessage", exception=TimedOut)
        with pytest.raises(NetworkError):  # HTTP can only answer 502 for an exception fault
            await bot.send_message(henry.id, "x")
    (document,) = state.sent_documents(henry.id)
    assert (document.content, document.mime_type) == (b"a,b\n1,2\n", "text/csv")
    (call,) = state.calls_to("sendDocument")
    assert call.params["protect_content"] is True and call.params["chat_id"] == henry.id


async def test_wrong_token_is_401(server: EmulatorServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server.base_url}999:NOPE/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    with pytest.raises(InvalidToken):
        async with Bot("999:NOPE", base_url=server.base_url):
            pass
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.api_url}/file/bot{server.state.token}/x/y.csv")
    assert response.status_code == 404

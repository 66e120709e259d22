"""The command menus Telegram shows beside the text field, in the reader's language."""

from __future__ import annotations

from telegram import BotCommand

from bot.i18n import _

__all__ = ["patient_menu", "therapist_menu"]


def patient_menu(show_progress: bool) -> list[BotCommand]:
    """Patients' commands; /progress only where the clinic shows patients their charts."""
    commands = [
        BotCommand("help", _("What this bot does and your options")),
        BotCommand("crisis", _("Where to get help right now")),
        BotCommand("pause", _("Take a break from messages")),
        BotCommand("resume", _("Continue after a break")),
        BotCommand("settings", _("Language, time zone and quiet hours")),
        BotCommand("mydata", _("A copy of what is stored about you")),
        BotCommand("stop", _("Stop all messages")),
    ]
    if show_progress:
        commands.insert(-1, BotCommand("progress", _("Your check-ins as a chart")))
    return commands


def therapist_menu() -> list[BotCommand]:
    return [
        BotCommand("patients", _("Your patients, their status and next prompt")),
        BotCommand("dashboard", _("Open your workspace")),
        BotCommand("invite", _("A single-use link for a new patient")),
        BotCommand("session", _("Log a session, or plan one ahead")),
        BotCommand("sessions", _("Planned and past sessions of a patient")),
        BotCommand("schedule", _("A patient's upcoming and recent prompts")),
        BotCommand("replies", _("A patient's recent answers")),
        BotCommand("scores", _("Questionnaire totals and bands")),
        BotCommand("trends", _("A chart of a patient's check-ins")),
        BotCommand("templates", _("The schedule templates")),
        BotCommand("help", _("All therapist commands")),
    ]

"""Errors a service raises when the request cannot be done; the message is safe to show the
person who asked (it never names another user's data). The message is built in the asker's
language (`_()` where it is raised)."""

from bot.i18n import N_


class UserError(Exception):
    """Bad input or a request that is not allowed; nothing was changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(UserError):
    pass


# A button whose message is out of date, forged, or someone else's: one answer for all three,
# so a press learns nothing about data it may not see.
STALE_BUTTON = N_("This button is no longer valid.")  # `_(STALE_BUTTON)` where used

"""The Telegram wire, in one place: getting updates (polling, the webhook's HTTP server),
handling them side by side per chat, sending (pacing, lanes, the admission hook) and what
an answer from the Bot API means for a delivery. Nothing here decides what to say."""

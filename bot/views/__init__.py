"""Every piece of chat text and keyboard, and the callback-data codec: what the chat handlers,
the dispatcher and the alerts show. HTML for Telegram; anything a person typed goes through
`render.esc`. Views read plain data from services and know nothing of SQL."""

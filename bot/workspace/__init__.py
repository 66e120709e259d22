"""The therapist workspace under /app: a Telegram Mini App and a browser page (docs/workspace.md).

Routes are thin like the chat handlers: check who is asking, call the same service function
the chat command calls, render a page from `bot/views/web/`.
"""

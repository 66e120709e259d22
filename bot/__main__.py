"""`python -m bot` is the `afterglow` CLI."""

from bot.cli import main

main()

"""a course of treatment: planned sessions, recurring steps, reminders and answer windows stored

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

A session gets a `state` (planned, started, cancelled) and the time it became the anchor. A
template step can repeat (`every`, `count`) and carry its own reminders and answer window,
which its deliveries copy; a delivery counts its reminders and stores when the next one is due
(`remind_at`) and when it stops taking answers (`closes_at`).

Existing rows are kept and filled in: a cancelled session is `cancelled`, every other one
`started` and anchored at its start; a delivery already nudged has had one reminder; a
reflection still open gets the times the dispatcher used to compute on every tick, from
AFTERGLOW_NUDGE_AFTER and AFTERGLOW_ANSWER_WINDOW (24h and 72h when the settings cannot be
read). The date arithmetic is done here in Python, the same on SQLite and PostgreSQL. The
downgrade drops the new columns and indexes; the old columns never changed.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

from bot.db.types import UTCDateTime

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_sessions = sa.table(
    "treatment_sessions",
    sa.column("id", sa.Integer()),
    sa.column("state", sa.String(16)),
    sa.column("started_at", UTCDateTime()),
    sa.column("cancelled_at", UTCDateTime()),
    sa.column("anchored_at", UTCDateTime()),
)
_deliveries = sa.table(
    "deliveries",
    sa.column("id", sa.Integer()),
    sa.column("kind", sa.String(16)),
    sa.column("state", sa.String(16)),
    sa.column("sent_at", UTCDateTime()),
    sa.column("nudged_at", UTCDateTime()),
    sa.column("closed_at", UTCDateTime()),
    sa.column("reminders_sent", sa.Integer()),
    sa.column("remind_at", UTCDateTime()),
    sa.column("closes_at", UTCDateTime()),
)


def _windows() -> tuple[timedelta, timedelta]:
    """(nudge delay, answer window) as the service is configured: AFTERGLOW_NUDGE_AFTER and
    AFTERGLOW_ANSWER_WINDOW, from the environment or `.env`, else their defaults (24h, 72h).
    Read even when some other setting is invalid (that one is left at its default here); an
    invalid value of these two refuses the migration rather than backfill with a window the
    clinic did not choose."""
    from pydantic import ValidationError

    from bot.config import Settings, load_settings

    try:
        settings = Settings()
    except ValidationError as exc:
        others = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        others -= {"nudge_after", "answer_window"}
        defaults = {name: Settings.model_fields[name].default for name in others}
        # Polling: the webhook's cross-field checks are not these two either.
        settings = load_settings(**{**defaults, "mode": "polling"})
    return settings.nudge_after, settings.answer_window


def _open_reflections(*conditions: sa.ColumnElement[bool]) -> list[tuple[int, datetime]]:
    d = _deliveries.c
    rows = op.get_bind().execute(
        sa.select(d.id, d.sent_at)
        .where(d.kind == "reflection", d.closed_at.is_(None), d.sent_at.is_not(None), *conditions)
        .order_by(d.id)
    )
    return [(row_id, sent_at) for row_id, sent_at in rows]


def _set_after_sent(column: str, rows: list[tuple[int, datetime]], delay: timedelta) -> None:
    """`column = sent_at + delay` on these rows, computed here (the same on both databases)."""
    if rows:
        op.get_bind().execute(
            sa.update(_deliveries)
            .where(_deliveries.c.id == sa.bindparam("row_id"))
            .values({column: sa.bindparam("at", type_=UTCDateTime())}),
            [{"row_id": row_id, "at": sent_at + delay} for row_id, sent_at in rows],
        )


def upgrade() -> None:
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "state",
                sa.Enum(
                    "planned",
                    "started",
                    "cancelled",
                    name="session_state",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                server_default="started",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_treatment_sessions_state_start", ["state", "started_at"], unique=False
        )

    with op.batch_alter_table("template_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("every", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("count", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch_op.add_column(sa.Column("remind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("expires", sa.String(length=16), nullable=True))

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("every", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("occurrence", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("remind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("expires", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("reminders_sent", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_deliveries_reminders_sent"), "reminders_sent >= 0"
        )
        batch_op.create_index("ix_deliveries_state_remind", ["state", "remind_at"], unique=False)

    conn = op.get_bind()
    s = _sessions.c
    conn.execute(sa.update(_sessions).where(s.cancelled_at.is_not(None)).values(state="cancelled"))
    conn.execute(
        sa.update(_sessions)
        .where(s.cancelled_at.is_(None))
        .values(state="started", anchored_at=s.started_at)
    )

    # Until now a reflection got one reminder (`nudged_at`) and the dispatcher worked out the
    # reminder and the end of the answer window from `sent_at` on every tick: the open ones get
    # those times stored, a nudged one no further reminder.
    d = _deliveries.c
    conn.execute(sa.update(_deliveries).where(d.nudged_at.is_not(None)).values(reminders_sent=1))
    closing = _open_reflections(d.state.in_(["sent", "answered"]))
    reminding = _open_reflections(d.state == "sent", d.nudged_at.is_(None))
    if closing or reminding:
        nudge_after, answer_window = _windows()
        _set_after_sent("closes_at", closing, answer_window)
        _set_after_sent("remind_at", reminding, nudge_after)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_state_remind")
        batch_op.drop_constraint(op.f("ck_deliveries_reminders_sent"), type_="check")
        batch_op.drop_column("closes_at")
        batch_op.drop_column("remind_at")
        batch_op.drop_column("reminders_sent")
        batch_op.drop_column("expires")
        batch_op.drop_column("remind")
        batch_op.drop_column("occurrence")
        batch_op.drop_column("every")

    with op.batch_alter_table("template_steps", schema=None) as batch_op:
        batch_op.drop_column("expires")
        batch_op.drop_column("remind")
        batch_op.drop_column("count")
        batch_op.drop_column("every")

    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_treatment_sessions_state_start")
        batch_op.drop_constraint(op.f("ck_treatment_sessions_session_state"), type_="check")
        batch_op.drop_column("anchored_at")
        batch_op.drop_column("state")

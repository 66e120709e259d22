"""questionnaires in chat (a delivery kind, a `partial` state, item answers, an alert kind)
and the pre-session brief

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

A questionnaire is one delivery whose message moves from item to item (`position`, the item
shown); each item answer is a reply of kind `item` with its number (`item`) and its encrypted
value, one per item (a Back and a new tap replace it). A questionnaire whose window closed
unfinished is `partial`. A risk item raises an alert of kind `questionnaire`. A planned
session records when its therapist got the pre-session brief (`briefed_at`), so it goes once.

Enums are VARCHAR + CHECK: the new values widen the checks. The downgrade refuses while rows
use a new value (it would have to invent what they were); with none it narrows them again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ["education", "reflection", "checkin"]
_STATES = [
    "scheduled",
    "held",
    "sending",
    "sent",
    "answered",
    "skipped",
    "missed",
    "cancelled",
    "failed",
    "unknown",
]
_REPLIES = ["text", "choice", "note", "ack"]
_ALERTS = ["crisis", "checkin_risk"]
# (table, column, check name, values before, values added)
_CHECKS = [
    ("deliveries", "kind", "ck_deliveries_prompt_kind", _KINDS, ["questionnaire"]),
    ("deliveries", "state", "ck_deliveries_delivery_state", _STATES, ["partial"]),
    ("replies", "kind", "ck_replies_reply_kind", _REPLIES, ["item"]),
    ("alerts", "kind", "ck_alerts_alert_kind", _ALERTS, ["questionnaire"]),
]


def _condition(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("briefed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item", sa.Integer(), nullable=True))
        batch_op.create_index(
            "uq_replies_delivery_item",
            ["delivery_id", "item"],
            unique=True,
            sqlite_where=sa.text("item IS NOT NULL"),
            postgresql_where=sa.text("item IS NOT NULL"),
        )
    for table, column, name, before, added in _CHECKS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(name), type_="check")
            batch_op.create_check_constraint(op.f(name), _condition(column, before + added))


def downgrade() -> None:
    conn = op.get_bind()
    for table, column, _name, _before, added in _CHECKS:
        # Names and values are this module's constants, never input.
        query = sa.select(sa.func.count()).select_from(sa.table(table, sa.column(column)))
        used = conn.execute(query.where(sa.column(column).in_(added))).scalar_one()
        if used:
            raise RuntimeError(
                f"{used} row(s) of {table} have {column} {' or '.join(added)}, which 0007 "
                "cannot hold: export or remove them first"
            )
    for table, column, name, before, _added in _CHECKS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(name), type_="check")
            batch_op.create_check_constraint(op.f(name), _condition(column, before))
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_replies_delivery_item",
            sqlite_where=sa.text("item IS NOT NULL"),
            postgresql_where=sa.text("item IS NOT NULL"),
        )
        batch_op.drop_column("item")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("position")
    with op.batch_alter_table("treatment_sessions", schema=None) as batch_op:
        batch_op.drop_column("briefed_at")

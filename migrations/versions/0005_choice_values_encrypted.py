"""check-in values encrypted: replies.choice_value becomes replies.choice_value_enc

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

A check-in answer (a mood of 2 out of 10, "barely slept") is health data like free text. The
values already stored are encrypted here with the service's keys (`bot/db/migrate.py`), in
batches; the downgrade decrypts them back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.migrate import migration_cipher

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
_replies = sa.table(
    "replies",
    sa.column("id", sa.Integer()),
    sa.column("choice_value", sa.String(16)),
    sa.column("choice_value_enc", sa.LargeBinary()),
)


def _convert(source: str, target: str, change: object) -> None:
    conn = op.get_bind()
    src, dst = _replies.c[source], _replies.c[target]
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_replies.c.id, src)
            .where(_replies.c.id > last, src.is_not(None))
            .order_by(_replies.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, value in rows:
            conn.execute(
                sa.update(_replies).where(_replies.c.id == row_id).values({dst: change(value)})  # type: ignore[operator]
            )
        last = rows[-1][0]


def _has_rows(column: str) -> bool:
    conn = op.get_bind()
    found = conn.execute(
        sa.select(_replies.c.id).where(_replies.c[column].is_not(None)).limit(1)
    ).first()
    return found is not None


def upgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("choice_value_enc", sa.LargeBinary(), nullable=True))
    if _has_rows("choice_value"):
        cipher = migration_cipher(op.get_context().config.attributes.get("cipher"))
        _convert("choice_value", "choice_value_enc", cipher.encrypt)
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("choice_value")


def downgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("choice_value", sa.String(length=16), nullable=True))
    if _has_rows("choice_value_enc"):
        cipher = migration_cipher(op.get_context().config.attributes.get("cipher"))
        _convert("choice_value_enc", "choice_value", cipher.decrypt)
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("choice_value_enc")

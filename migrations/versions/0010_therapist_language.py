"""a therapist's language: their texts, alerts and notices in it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

One nullable column: existing therapists keep every row and get the clinic's default
language until their next message sets it from Telegram. The downgrade drops the column
(texts then go in the default language again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("therapists") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("therapists") as batch:
        batch.drop_column("language")

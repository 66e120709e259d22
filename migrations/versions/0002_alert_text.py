"""alert text on the alert; who acknowledged; who opened an invite

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_as", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("text_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("update_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_alerts_update_id"), ["update_id"])
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_by", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_column("opened_by")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_alerts_update_id"), type_="unique")
        batch_op.drop_column("update_id")
        batch_op.drop_column("text_enc")
        batch_op.drop_column("acknowledged_as")

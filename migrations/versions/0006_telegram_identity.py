"""no Telegram ids in clear for patients: an HMAC index to find them, the ids encrypted

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A leaked database must not say which Telegram account belongs to a clinic's patient.
`patients.telegram_user_id` and `chat_id` become `telegram_index` (a keyed HMAC of the user
id, unique) and `telegram_enc` (both ids, encrypted); `invites.opened_by` becomes
`opened_by_index`. Rows are converted with the service's keys (`bot/db/migrate.py`); the
downgrade restores the ids from `telegram_enc` (an invite's opener cannot be recovered from an
HMAC: the downgrade leaves it empty, which only means a crisis message written on a consent
screen is answered with resources but alerts nobody).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.crypto import Cipher
from bot.db.migrate import migration_cipher

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_patients = sa.table(
    "patients",
    sa.column("id", sa.Integer()),
    sa.column("telegram_user_id", sa.BigInteger()),
    sa.column("chat_id", sa.BigInteger()),
    sa.column("telegram_index", sa.LargeBinary()),
    sa.column("telegram_enc", sa.LargeBinary()),
)
_invites = sa.table(
    "invites",
    sa.column("id", sa.Integer()),
    sa.column("opened_by", sa.BigInteger()),
    sa.column("opened_by_index", sa.LargeBinary()),
)


def _cipher() -> Cipher:
    return migration_cipher(op.get_context().config.attributes.get("cipher"))


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("telegram_index", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("telegram_enc", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("invites") as batch:
        batch.add_column(sa.Column("opened_by_index", sa.LargeBinary(length=32), nullable=True))

    patients = conn.execute(
        sa.select(_patients.c.id, _patients.c.telegram_user_id, _patients.c.chat_id).where(
            _patients.c.telegram_user_id.is_not(None)
        )
    ).all()
    invites = conn.execute(
        sa.select(_invites.c.id, _invites.c.opened_by).where(_invites.c.opened_by.is_not(None))
    ).all()
    if patients or invites:
        cipher = _cipher()
        for row_id, user_id, chat_id in patients:
            conn.execute(
                sa.update(_patients)
                .where(_patients.c.id == row_id)
                .values(
                    telegram_index=cipher.indexes(user_id)[0],
                    telegram_enc=cipher.encrypt(f"{user_id}:{chat_id or user_id}"),
                )
            )
        for row_id, user_id in invites:
            conn.execute(
                sa.update(_invites)
                .where(_invites.c.id == row_id)
                .values(opened_by_index=cipher.indexes(user_id)[0])
            )

    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint("uq_patients_telegram_user_id", type_="unique")
        batch.drop_column("telegram_user_id")
        batch.drop_column("chat_id")
        batch.create_unique_constraint("uq_patients_telegram_index", ["telegram_index"])
    with op.batch_alter_table("invites") as batch:
        batch.drop_column("opened_by")


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("telegram_user_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("invites") as batch:
        batch.add_column(sa.Column("opened_by", sa.BigInteger(), nullable=True))

    rows = conn.execute(
        sa.select(_patients.c.id, _patients.c.telegram_enc).where(
            _patients.c.telegram_enc.is_not(None)
        )
    ).all()
    if rows:
        cipher = _cipher()
        for row_id, token in rows:
            user, _, chat = cipher.decrypt(bytes(token)).partition(":")
            conn.execute(
                sa.update(_patients)
                .where(_patients.c.id == row_id)
                .values(telegram_user_id=int(user), chat_id=int(chat))
            )

    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint("uq_patients_telegram_index", type_="unique")
        batch.drop_column("telegram_index")
        batch.drop_column("telegram_enc")
        batch.create_unique_constraint("uq_patients_telegram_user_id", ["telegram_user_id"])
    with op.batch_alter_table("invites") as batch:
        batch.drop_column("opened_by_index")

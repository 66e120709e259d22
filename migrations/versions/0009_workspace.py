"""the therapist workspace: browser sign-in links, browser sessions, therapists' own templates

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Links and sessions hold only SHA-256 hashes of their tokens. An own template is template
YAML (no patient data), checked by the same rules as a content file when it is saved. New
tables only: existing rows are untouched, and the downgrade drops the three tables (a
therapist's own templates go with them; sessions already planned from one keep their
snapshot in `templates`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _therapist_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["therapist_id"],
        ["therapists.id"],
        name=op.f(f"fk_{table}_therapist_id_therapists"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "workspace_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _therapist_fk("workspace_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_workspace_links_token_hash")),
    )
    op.create_table(
        "workspace_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        _therapist_fk("workspace_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_workspace_sessions_token_hash")),
    )
    op.create_table(
        "own_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _therapist_fk("own_templates"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_own_templates")),
        sa.UniqueConstraint("therapist_id", "name", name=op.f("uq_own_templates_therapist_id")),
    )


def downgrade() -> None:
    op.drop_table("own_templates")
    op.drop_table("workspace_sessions")
    op.drop_table("workspace_links")

"""scores.stage_intent, writing_by/at: a stage move recorded before its first request, and
the run writing a contact's fields now

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage_intent", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("writing_by", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("writing_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_column("writing_at")
        batch_op.drop_column("writing_by")
        batch_op.drop_column("stage_intent")

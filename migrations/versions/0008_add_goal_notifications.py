"""Let notifications point at a goal: status changes and due check-ins land in the inbox

Revision ID: 583ea761ec75
Revises: 99c39af3ad04
Create Date: 2026-11-26 10:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "583ea761ec75"
down_revision = "99c39af3ad04"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('mention', 'reply', 'resolved')"
NEW_KINDS = "kind IN ('mention', 'reply', 'resolved', 'goal_status', 'check_in_due')"


def upgrade():
    # The notifications table keeps its row-level security policy; only columns and a CHECK change.
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("goal_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("summary", sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_goal_id"), ["goal_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_goal_id_goals"), "goals", ["goal_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_constraint(batch_op.f("ck_notifications_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_notifications_kind"), NEW_KINDS)


def downgrade():
    op.execute("DELETE FROM notifications WHERE kind IN ('goal_status', 'check_in_due')")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_notifications_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_notifications_kind"), OLD_KINDS)
        batch_op.drop_constraint(batch_op.f("fk_notifications_goal_id_goals"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notifications_goal_id"))
        batch_op.drop_column("summary")
        batch_op.drop_column("goal_id")

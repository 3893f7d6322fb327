"""Scale-out singletons and mirror hardening: the first revision each rotated key
signs (the leases reuse ``health_lease``).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('key_rotation_starts',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_key_rotation_starts'))
    )


def downgrade() -> None:
    op.drop_table('key_rotation_starts')

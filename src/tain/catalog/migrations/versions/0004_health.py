"""Site health: the sites a redirector knows, their checks and lag history.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('site_health',
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('up', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('throughput', sa.Float(), nullable=True),
    sa.Column('checked_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('site', name=op.f('pk_site_health'))
    )
    op.create_table('site_repo_health',
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('repo', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=True),
    sa.Column('lag_revisions', sa.Integer(), nullable=True),
    sa.Column('lag_seconds', sa.Float(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('sample_path', sa.Text(), nullable=True),
    sa.Column('in_rotation', sa.Boolean(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('successes', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.Float(), nullable=False),
    sa.Column('changed_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('site', 'repo', name=op.f('pk_site_repo_health'))
    )
    op.create_table('site_lag_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('repo', sa.String(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=True),
    sa.Column('lag_revisions', sa.Integer(), nullable=True),
    sa.Column('lag_seconds', sa.Float(), nullable=True),
    sa.Column('up', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_lag_history'))
    )
    op.create_index(op.f('ix_site_lag_history_at'), 'site_lag_history', ['at'], unique=False)
    op.create_index(op.f('ix_site_lag_history_site_repo_at'), 'site_lag_history', ['site', 'repo', 'at'], unique=False)
    op.create_table('health_lease',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_health_lease'))
    )


def downgrade() -> None:
    op.drop_table('health_lease')
    op.drop_index(op.f('ix_site_lag_history_site_repo_at'), table_name='site_lag_history')
    op.drop_index(op.f('ix_site_lag_history_at'), table_name='site_lag_history')
    op.drop_table('site_lag_history')
    op.drop_table('site_repo_health')
    op.drop_table('site_health')

"""Pull sources: scheduled rsync/HTTP jobs, their runs and leases.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('source_jobs',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('repo', sa.String(length=64), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('from_config', sa.Boolean(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('next_run', sa.Float(), nullable=True),
    sa.Column('last_start', sa.Float(), nullable=True),
    sa.Column('last_end', sa.Float(), nullable=True),
    sa.Column('last_duration', sa.Float(), nullable=True),
    sa.Column('last_bytes', sa.BigInteger(), nullable=True),
    sa.Column('last_files', sa.BigInteger(), nullable=True),
    sa.Column('last_revision', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_source_jobs'))
    )
    op.create_table('source_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('files', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('log', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_runs'))
    )
    op.create_index(op.f('ix_source_runs_job_id'), 'source_runs', ['job', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_source_runs_job_id'), table_name='source_runs')
    op.drop_table('source_runs')
    op.drop_table('source_jobs')

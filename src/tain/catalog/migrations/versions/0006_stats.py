"""Statistics and alerts: aggregated counters per day, alert state.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

PathText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _key(*extra: sa.Column[Any]) -> list[sa.Column[Any]]:
    return [
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('site', sa.String(length=255), nullable=False),
        sa.Column('repo', sa.String(length=64), nullable=False),
        *extra,
    ]


def upgrade() -> None:
    op.create_table('stats_downloads', *_key(),
    sa.Column('downloads', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'site', 'repo', name=op.f('pk_stats_downloads'))
    )
    op.create_table('stats_popular', *_key(sa.Column('path', PathText, nullable=False)),
    sa.Column('downloads', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'site', 'repo', 'path', name=op.f('pk_stats_popular'))
    )
    op.create_table('stats_pushes', *_key(),
    sa.Column('commits', sa.BigInteger(), nullable=False),
    sa.Column('bytes_received', sa.BigInteger(), nullable=False),
    sa.Column('files_changed', sa.BigInteger(), nullable=False),
    sa.Column('latency_sum', sa.Float(), nullable=False),
    sa.Column('latency_max', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'site', 'repo', name=op.f('pk_stats_pushes'))
    )
    op.create_table('stats_push_latency', *_key(sa.Column('bucket', sa.Integer(),
                                                           autoincrement=False, nullable=False)),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'site', 'repo', 'bucket', name=op.f('pk_stats_push_latency'))
    )
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=440), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('opened_at', sa.Float(), nullable=False),
    sa.Column('last_sent_at', sa.Float(), nullable=True),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('resolved_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    op.create_index(op.f('ix_alerts_key_resolved_at'), 'alerts', ['key', 'resolved_at'], unique=False)
    op.create_index(op.f('ix_alerts_resolved_at'), 'alerts', ['resolved_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alerts_resolved_at'), table_name='alerts')
    op.drop_index(op.f('ix_alerts_key_resolved_at'), table_name='alerts')
    op.drop_table('alerts')
    op.drop_table('stats_push_latency')
    op.drop_table('stats_pushes')
    op.drop_table('stats_popular')
    op.drop_table('stats_downloads')

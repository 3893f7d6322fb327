"""Mirror sites: replayable change lists, head statements, the key chain, sync traces.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revision_changes',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'],
                            name=op.f('fk_revision_changes_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'number', name=op.f('pk_revision_changes'))
    )
    op.create_table('head_statements',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'],
                            name=op.f('fk_head_statements_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', name=op.f('pk_head_statements'))
    )
    op.create_table('key_rotations',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('old_key', sa.Text(), nullable=True),
    sa.Column('new_key', sa.Text(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('signature', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_key_rotations'))
    )
    op.create_table('mirror_trace',
    sa.Column('repo', sa.String(length=64), nullable=False),
    sa.Column('upstream', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('upstream_head', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.Float(), nullable=True),
    sa.Column('last_success_at', sa.Float(), nullable=True),
    sa.Column('last_bytes', sa.BigInteger(), nullable=False),
    sa.Column('last_duration', sa.Float(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('repo', name=op.f('pk_mirror_trace'))
    )


def downgrade() -> None:
    op.drop_table('mirror_trace')
    op.drop_table('key_rotations')
    op.drop_table('head_statements')
    op.drop_table('revision_changes')

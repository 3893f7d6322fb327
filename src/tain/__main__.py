"""``python -m tain``: the same as the ``tain`` command."""

from tain.cli.main import run

run()

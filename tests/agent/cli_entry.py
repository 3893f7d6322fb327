"""``python -m tests.agent.cli_entry ...``: the tain CLI with the agent commands
registered, as a child process (the agent tests run the real command line this way)."""

from __future__ import annotations

import typer

from tain.cli.agent import register
from tain.cli.main import TainGroup

app = typer.Typer(cls=TainGroup, name="tain", no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def main() -> None:
    """tain (with the agent commands)."""


register(app)

if __name__ == "__main__":
    app(prog_name="tain")

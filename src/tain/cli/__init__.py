"""The ``tain`` command line (Typer + Rich)."""

"""The command line: thin Typer commands over ``custodes.bootstrap``."""

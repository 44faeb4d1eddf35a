"""``python -m custodes`` runs the command line."""

from custodes.cli.main import run

if __name__ == "__main__":
    run()

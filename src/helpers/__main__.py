"""`python -m helpers COMMAND ...`: the `deepfake-lessons` command, for when its console script is not installed."""
import sys

from helpers import cli

sys.exit(cli.main(prog="python -m helpers"))

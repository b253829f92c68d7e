"""`python -m fer_edge` = the `fer-edge` command."""
from fer_edge.cli.main import app

app(prog_name="fer-edge")

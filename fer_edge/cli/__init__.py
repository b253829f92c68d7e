"""Thin Typer CLI: each command parses options and calls one public function (heavy imports inside)."""

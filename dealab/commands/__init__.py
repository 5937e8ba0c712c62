"""Sub-command groups of the `dealab` CLI, one typer app per module, mounted by dealab.cli."""

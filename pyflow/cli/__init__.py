"""Command-line interface: `pyflow run|info` and `yarn-session` (click)."""

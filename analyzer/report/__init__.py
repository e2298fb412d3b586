"""Reporters: each module renders the findings document (docs/findings-format.md)."""

"""Errors the command line turns into a one-line message and exit code 2."""


class UnusableInput(Exception):
    """The input cannot be analyzed (no traces, unknown format version, bad option)."""

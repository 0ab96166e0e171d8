"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class Perf2ScoreError(Exception):
    """An error caused by the user's input (bad file, bad option), not by a bug."""

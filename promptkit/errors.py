"""The one error hierarchy of promptkit. The CLI catches PromptkitError once and prints one line."""


class PromptkitError(Exception):
    """Base class: every error promptkit raises on bad input or a failing service."""

"""The one error hierarchy of promptkit. The CLI catches PromptkitError once and prints one line."""


class PromptkitError(Exception):
    """Base class: every error promptkit raises on bad input or a failing service."""


class ClassSetError(PromptkitError):
    """An unknown class set, or empty / duplicate / malformed class names."""


class TemplateError(PromptkitError):
    """A template that is missing, does not parse, or uses a variable that was not given."""


class LLMError(PromptkitError):
    """The LLM endpoint could not be used (no key, unreachable, refused, failing)."""


class ParseError(PromptkitError):
    """An LLM answer held no usable descriptor phrase."""


class BudgetError(PromptkitError):
    """A description (or one descriptor) does not fit CLIP's token budget."""


class StoreError(PromptkitError):
    """The descriptor store cannot be written, or a version / file is unknown or corrupt."""


class CorruptSetError(StoreError):
    """A stored descriptor set is unreadable, malformed, or fails its content hash."""


class SetContentError(PromptkitError):
    """A descriptor set lacks what was asked of it (negative descriptions, several descriptions per class)."""


class ExchangeError(PromptkitError):
    """An export or import (CSV, Hugging Face dataset, hand-edited JSON) failed."""


class EvalError(PromptkitError):
    """An evaluation command (compare, embed, interpret) cannot run on its input."""

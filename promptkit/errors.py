"""The error root of the toolkit and promptkit's errors.

`ToolkitError` is the base of every error both packages raise on bad input, bad files or a failing
service: promptkit's derive from `PromptkitError`, trainer's from `trainer.errors.TrainerError`,
both below it. The console scripts (`promptkit.clirun.run_app`) catch it once and print one line.
"""


class ToolkitError(Exception):
    """The root: every error of promptkit and trainer on bad input, bad files or a failing service."""


class PromptkitError(ToolkitError):
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


class DescribeError(PromptkitError):
    """Describing clips stopped (a failing request or an unreadable clip); the finished answers are kept."""

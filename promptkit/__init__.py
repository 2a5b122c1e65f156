"""promptkit: LLM-written facial-expression descriptors, versioned and fitted to CLIP's 77 tokens."""

__version__ = "0.1.0"

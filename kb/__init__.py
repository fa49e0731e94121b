"""llm-kb core: entries -> Corpus -> store / index / site."""

__version__ = "0.1.0"

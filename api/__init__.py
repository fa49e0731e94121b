"""The HTTP API (FastAPI), read-only over one build."""

"""Sinks: copies of the refined corpus kept in other stores that RAG stacks read."""

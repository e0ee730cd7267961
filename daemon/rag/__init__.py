"""The hand-off to a RAG system: the exported knowledge base, retrieval evaluation and
``inboxd ask``."""

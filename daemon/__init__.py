"""inboxd: watch agent drop folders and refine what arrives into a searchable Q&A base."""

__version__ = "0.1.0"

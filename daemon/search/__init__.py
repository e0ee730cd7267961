"""Searching the knowledge base (dense, lexical, hybrid) in-process or through the
running daemon's socket."""

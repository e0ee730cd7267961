"""Corpus refinement over stored vectors: the hnswlib index and corpus-wide
de-duplication with its index sync."""

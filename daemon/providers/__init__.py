"""Interchangeable implementations behind one protocol each: embedders, scorers and
answer generators, chosen by name from the config."""

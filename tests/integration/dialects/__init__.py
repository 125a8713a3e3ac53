"""Dialect tests: each seed API through the whole app."""

"""Unit tests for vidgate.media."""

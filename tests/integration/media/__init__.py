"""Integration tests for vidgate.media: storage backends, rendering, probing."""

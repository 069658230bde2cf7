"""Integration tests of replayer.conform."""

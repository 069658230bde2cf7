"""Unit tests of replayer.conform."""

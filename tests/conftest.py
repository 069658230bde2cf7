"""Suite-wide settings."""

from __future__ import annotations

from hypothesis import settings

# Wall-clock deadlines make property tests flaky on a loaded 2-core CI machine; the
# examples are small and bounded, so their time is not what these tests check.
settings.register_profile("replayer", deadline=None, print_blob=True)
settings.load_profile("replayer")

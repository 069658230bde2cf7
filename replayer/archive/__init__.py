"""The recording format, pure: record types, the streaming writer and reader,
migrations from older versions, redaction of secrets, integrity checks, the JSON Lines
view and the timeline filters and statistics. Spec: docs/archive-format.md.
May import ``gateway``; never ``record``, ``replay`` or ``cli``, nor any I/O framework."""

"""The recording format, pure: record types, the streaming writer and reader,
migrations from older versions, and redaction of secrets. Spec: docs/archive-format.md."""

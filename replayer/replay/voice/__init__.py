"""The replay's voice face, sans-I/O: the voice gateway engine, its faults, its verdicts.

The I/O shell (TLS WebSocket server, UDP responder) is ``replayer.replay.voice_server``.
"""

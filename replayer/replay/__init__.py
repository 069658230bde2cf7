"""The replay engine, pure: what an archive offers to replay (the script), the
per-connection gateway state machine, REST answers. The I/O shell is replayer/server.py."""

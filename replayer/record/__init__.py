"""Recording: the recorder's logic (``recorder``, pure: frames in, archive records out),
and its I/O shells: the mitmproxy addon, the in-process proxy of ``replayer record``,
the recorder worker process and the import of mitmproxy flow files.
May import ``gateway`` and ``archive``; never ``replay`` or ``cli``."""

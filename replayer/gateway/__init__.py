"""The Discord gateway model, pure: opcodes, close codes, payloads, JSON and ETF, transport
compression, and one stateful codec per connection. The bottom layer: imports nothing of
replayer but ``errors``, and no I/O framework."""

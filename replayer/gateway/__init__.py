"""The Discord gateway model, pure: opcodes, close codes, payloads and codecs."""

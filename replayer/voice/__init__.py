"""The Discord voice gateway model: opcodes, close codes, the binary frame layout. Pure.

May import ``replayer.gateway`` and ``replayer.errors`` only.
"""

"""The shared floor under the stack and the engines: request and response messages, the loopback, the
operation model, the Engine base, the one atomic state store, and the lab-time port.

Engines import only this floor (never `dealab.stack`); the stack imports engines only to load them.
"""

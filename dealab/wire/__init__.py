"""The shared floor under the stack and the engines: request and response messages, the loopback, the
operation model, the Engine base, the one atomic state store, the lab-time port, and the admin token that
the stack writes and its clients (CLI, grader, tests) send.

Engines import only this floor (never `dealab.stack`); the stack imports engines only to load them.
"""

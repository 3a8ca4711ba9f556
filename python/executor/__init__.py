"""Tollgate's Python executor: runs Python policies for the engine over framed protobuf on a Unix socket.

Run it with ``python -m executor --help``. The engine starts it, connects to its socket and
sends every Python policy call over one multiplexed ``ExecuteStream`` (see
``proto/tollgate/executor/v1/executor.proto``).
"""

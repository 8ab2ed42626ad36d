"""Loaded by CLI subprocesses started from the tests: IP sockets refuse to connect there too,
so "no network access anywhere" holds for the real program, not only in-process."""

import socket

_real = socket.socket.connect


def _connect(self, address, *args):
    if self.family == getattr(socket, "AF_UNIX", object()):
        return _real(self, address, *args)
    raise OSError(f"network access blocked in tests: connect to {address!r}")


def _create_connection(address, *args, **kwargs):
    raise OSError(f"network access blocked in tests: create_connection to {address!r}")


socket.socket.connect = _connect
socket.socket.connect_ex = _connect
socket.create_connection = _create_connection

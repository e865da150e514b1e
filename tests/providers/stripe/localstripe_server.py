"""Runs localstripe (https://github.com/adrienverge/localstripe) on 127.0.0.1 for the
tests: the port is chosen by the system and printed once the socket listens, so the
fixture needs neither a guessed free port nor a poll.

Two departures from `localstripe --port N`: it listens on 127.0.0.1 only (localstripe's
own start() binds every interface), and its store stays in memory (localstripe pickles
its whole store to /tmp/localstripe.pickle after every change, a file every localstripe
on the machine would share).
"""

from __future__ import annotations

import socket

from aiohttp import web
from localstripe import resources
from localstripe.server import app


def main() -> None:
    resources.Store.dump_to_disk = lambda self: None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()

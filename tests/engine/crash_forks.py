"""The parent of the crash test's drivers: imports `crash_driver` once, then forks one
fresh driver process per run.

    python -m tests.engine.crash_forks FD

Each run is still a process of its own, killed with SIGKILL wherever it is; it only
skips importing paymend again (some 3 s each, and the crash test starts twelve drivers
per database). The parent stays single-threaded and opens nothing (no event loop, no
database, no thread) before it forks, so a child starts as clean as a new process.

FD is one end of a SOCK_SEQPACKET socket pair: each run arrives on it as one message,
its argv in JSON, with two file descriptors attached (SCM_RIGHTS): where the child's
stdout and stderr go. The parent answers on its own stdout `pid <pid>` once forked and
`exit <pid> <code>` when the child ended (`-9` after a SIGKILL, as `subprocess` says
it). The socket's end ends the parent.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sys
import traceback

from tests.engine import crash_driver


def _child(argv: list[str], out: int, err: int) -> None:
    """In the forked child: its own output, fresh randomness, the driver; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        random.seed()  # the parent's state would be every child's
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        code = crash_driver.main(argv)
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001 (whatever it was, it goes to the log)
        traceback.print_exc()
    finally:
        os._exit(code)


def main(fd: int) -> int:
    runs = socket.socket(fileno=fd)
    while True:
        message, fds, _, _ = socket.recv_fds(runs, 65536, 2)
        if not message:
            return 0
        out, err = fds
        pid = os.fork()
        if pid == 0:
            runs.close()
            _child([str(a) for a in json.loads(message)], out, err)
        os.close(out)
        os.close(err)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))

"""domain/entropy.py: random bytes cut from pages of the OS's, never handed out twice."""

from __future__ import annotations

import os
import threading

from paymend.domain import entropy


def test_bytes_come_in_the_size_asked_and_never_repeat() -> None:
    # more than a page's worth, so the pool is refilled on the way
    taken = [entropy.random_bytes(9) for _ in range(2 * entropy.PAGE // 9 + 5)]
    assert {len(b) for b in taken} == {9}
    assert len(set(taken)) == len(taken)
    big = entropy.random_bytes(entropy.PAGE + 1)
    assert len(big) == entropy.PAGE + 1
    assert len(entropy.random_hex(16)) == 32
    assert int(entropy.random_hex(16), 16) != int(entropy.random_hex(16), 16)
    assert 0 <= entropy.random_int(9) < 1 << 72


def test_threads_taking_at_once_never_get_the_same_bytes() -> None:
    taken: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def take(mine: list[bytes]) -> None:
        start.wait()
        mine.extend(entropy.random_bytes(9) for _ in range(3000))

    threads = [threading.Thread(target=take, args=(t,)) for t in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [b for mine in taken for b in mine]
    assert len(set(every)) == len(every) == 8 * 3000


def test_a_forked_child_never_hands_out_its_parents_next_bytes() -> None:
    entropy.random_bytes(9)  # the parent has a page with bytes left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes to the parent, then out
        try:
            os.write(write, entropy.random_bytes(16))
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert entropy.random_bytes(16) != child

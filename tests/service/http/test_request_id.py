"""Request ids: a sane client id is kept; new ids are random, unique, also across forked
workers."""

from __future__ import annotations

import itertools
import os

from service.http.request_id import IDS_PER_READ, new_request_id, request_id_of


def test_a_sane_client_id_is_kept_and_anything_else_replaced() -> None:
    assert request_id_of([(b"x-request-id", b"abc-123.x:y_z")]) == "abc-123.x:y_z"
    replaced = request_id_of([(b"x-request-id", b"bad id\n")])
    assert replaced != "bad id\n" and len(replaced) == 32
    assert len(request_id_of([])) == 32


def test_new_ids_are_unique_hex() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_new_ids_do_not_follow_from_the_last_one() -> None:
    """Feedback is matched by id: seeing one id must tell nothing about the next. Two random
    128-bit ids share their first 64 bits with probability 2**-64."""
    ids = [new_request_id() for _ in range(3 * IDS_PER_READ)]  # across refills
    assert all(a[:16] != b[:16] and a[16:] != b[16:] for a, b in itertools.pairwise(ids))


def test_a_forked_process_draws_its_own_ids() -> None:
    new_request_id()  # the parent holds drawn ids
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id back and leave without running pytest's teardown
        try:
            os.write(write, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    following = new_request_id()  # what the child would have handed out with the parent's ids
    assert len(child) == 32 and child != following and child[:16] != parent[:16]

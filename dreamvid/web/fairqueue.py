"""The studio's queue: one line of waiting jobs per client, served round robin.

One job runs at a time (one device); which waits next is fair between clients: after a job
of client A, the next is the oldest waiting job of the client after A in the rotation, not
A's next one. A client that queues 10 jobs in a second delays another client's one job by
at most one job, not ten.
"""
from __future__ import annotations

import threading
from collections import deque


class FairQueue:
    """Job ids waiting to run, per owner; `get` blocks for the next one in round-robin order."""

    def __init__(self) -> None:
        self._lines: dict[str, deque[str]] = {}  # owner -> waiting ids; the dict's order is the rotation
        self._cond = threading.Condition()
        self._closed = False

    def put(self, owner: str, job_id: str) -> None:
        """Queue a job at the end of its owner's line (a new owner joins the end of the rotation)."""
        with self._cond:
            self._lines.setdefault(owner, deque()).append(job_id)
            self._cond.notify()

    def get(self) -> str | None:
        """The next job id (blocks until there is one); None once closed."""
        with self._cond:
            while not self._lines and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            owner = next(iter(self._lines))
            line = self._lines.pop(owner)
            job_id = line.popleft()
            if line:
                self._lines[owner] = line  # re-inserted: this owner goes to the end of the rotation
            return job_id

    def remove(self, job_id: str) -> None:
        """Take a waiting job out (cancelled or deleted); nothing if it is not waiting."""
        with self._cond:
            for owner, line in list(self._lines.items()):
                if job_id in line:
                    line.remove(job_id)
                    if not line:
                        del self._lines[owner]

    def ahead(self, job_id: str) -> int | None:
        """How many waiting jobs run before `job_id` (None if it is not waiting)."""
        with self._cond:
            lines = [list(line) for line in self._lines.values()]
        order, k = [], 0
        while any(k < len(line) for line in lines):  # the order `get` will serve them in
            order += [line[k] for line in lines if k < len(line)]
            k += 1
        return order.index(job_id) if job_id in order else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

"""One writer at a time across the Hearth instances that share a Chroma server: a lease kept in it.

Each instance's writer lock (lock.py) is a file on its own machine, so against a shared server it
cannot keep two machines from writing at once. The lease lives in the server's `hearth-catalog`:
numbered records `lease:<n>`, the current lease being the highest number. Chroma has no
transactions, but `add` of an id that is already there is ignored, so the first add of a number
wins: that is the compare-and-set this is built on.

    take     read the current lease; if it is released or expired, add lease n+1 and read it back:
             the instance whose record is there, and is still the highest, holds it
    renew    the holder rewrites its own record's expiry every TTL/3 (no one else writes it)
    release  the holder marks its record released
    lost     a holder that could not renew in time (stalled, or the server away) is told so before
             its next write (check); whoever took over after the expiry writes instead

A holder killed -9 stops renewing; after TTL the next writer takes over and learns that it did
(took_over), so it sweeps what the dead writer left half-done (Library.sweep). Expiry compares wall
clocks, so the instances' clocks must agree to well within the TTL (NTP does).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time

from .errors import LeaseLost, StoreBusy

_DUMMY = [0.0]
_META = {"kind": "lease", "collection": "lease"}


class Lease:
    def __init__(self, catalog, instance: str, ttl: float):
        self.catalog, self.instance, self.ttl = catalog, instance, ttl
        self.number: int | None = None
        self.took_over = False  # the lease was taken from a holder that never released it
        self._token = secrets.token_hex(8)
        self._expires = 0.0
        self._lost = threading.Event()
        self._done = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- records ----------------------------------------------------------------------------------
    def _leases(self) -> dict[int, dict]:
        got = self.catalog.get(where={"kind": "lease"}, include=["documents"])
        return {int(rid.split(":", 1)[1]): json.loads(doc) for rid, doc in zip(got["ids"], got["documents"])}

    def _record(self, expires: float, released: bool = False) -> str:
        return json.dumps({"instance": self.instance, "token": self._token, "host": socket.gethostname(),
                           "pid": os.getpid(), "expires_at": expires, "released": released})

    # --- taking and giving back -------------------------------------------------------------------
    def acquire(self, wait: float | None = None, on_wait=None) -> "Lease":
        deadline = None if wait is None else time.monotonic() + wait
        told = False
        while True:
            holder = self._try()
            if holder is None:
                return self
            if deadline is not None and time.monotonic() >= deadline:
                raise StoreBusy(f"the shared library is busy: another Hearth instance ({holder['host']}, pid "
                                f"{holder['pid']}) is writing to it")
            if on_wait and not told:
                on_wait(f"waiting for another Hearth instance ({holder['host']}, pid {holder['pid']}) to finish "
                        "writing to the shared library…")
                told = True
            time.sleep(0.5)

    def _try(self) -> dict | None:
        """Take the lease if it is free: None when taken, else the record of whoever holds it. The
        caller holds this instance's writer lock, so a lease of this instance's own is a dead
        process's (kill -9) and is taken over at once."""
        leases = self._leases()
        top = max(leases, default=0)
        current = leases.get(top)
        if current is not None and not current["released"] and current["expires_at"] > time.time() \
                and current["instance"] != self.instance:
            return current
        number, expires = top + 1, time.time() + self.ttl
        self.catalog.add(ids=[f"lease:{number}"], embeddings=[_DUMMY], metadatas=[_META],
                         documents=[self._record(expires)])  # ignored if that number is already taken
        now = self._leases()
        if now.get(number, {}).get("token") != self._token or max(now) != number:
            if now.get(number, {}).get("token") == self._token:  # ours, but on a stale number
                self.catalog.delete(ids=[f"lease:{number}"])
            return now.get(max(now, default=0)) or {"host": "?", "pid": "?"}
        self.number, self._expires = number, expires
        self.took_over = current is not None and not current["released"]
        older = [f"lease:{n}" for n in now if n < number]
        if older:
            self.catalog.delete(ids=older)
        self._renewer = threading.Thread(target=self._renew, name="hearth-lease", daemon=True)
        self._renewer.start()
        return None

    def _renew(self):
        while not self._done.wait(self.ttl / 3):
            try:
                if max(self._leases(), default=0) != self.number:
                    self._lost.set()  # someone took over after our lease ran out
                    return
                expires = time.time() + self.ttl
                self.catalog.upsert(ids=[f"lease:{self.number}"], embeddings=[_DUMMY], metadatas=[_META],
                                    documents=[self._record(expires)])
                self._expires = expires
            except Exception:  # the server away for a moment: check() tells once the lease has run out
                continue

    def check(self):
        """Raise LeaseLost if this instance may no longer be the only writer."""
        if self._lost.is_set() or time.time() > self._expires:
            raise LeaseLost("this Hearth instance lost its writer lease on the shared library (it could not "
                            "renew it in time); nothing half-written is kept: run it again")

    def release(self):
        self._done.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.number is None:
            return
        try:
            if max(self._leases(), default=0) == self.number:
                self.catalog.upsert(ids=[f"lease:{self.number}"], embeddings=[_DUMMY], metadatas=[_META],
                                    documents=[self._record(0.0, released=True)])
        except Exception:  # unreachable: the lease simply expires
            pass
        self.number = None

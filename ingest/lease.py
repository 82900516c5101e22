"""One writer at a time across the Hearth instances that share a Chroma server: a lease kept in it.

Each instance's writer lock (lock.py) is a file on its own machine, so against a shared server it
cannot keep two machines from writing at once. The lease lives in the server's `hearth-catalog`:
numbered records `lease:<n>`, the current lease being the highest number. Chroma has no
transactions, but `add` of an id that is already there is ignored, so the first add of a number
wins: that is the compare-and-set this is built on.

    take     read the current lease; if it is released or expired, add lease n+1 and read it back:
             the instance whose record is there, is still the highest, and whose predecessor was
             not renewed meanwhile, holds it
    renew    the holder rewrites its own record's expiry every TTL/3, only while its lease has not
             run out and is still the newest (checked before and after the write, which is an
             update: a record deleted by whoever took over is never written back)
    release  the holder marks its record released
    fence    the lease number is a fencing token: before each write (check, and the catalog's own
             writes) the holder checks that its number is still the highest in the server, and in
             time; a holder that stalled past the TTL, or was taken over, is refused (LeaseLost).
             A write that passed the check and stalled before it was sent still lands: file records
             are versioned by lease number, the newest read (catalog.py), so it lands as a loser

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
    def __init__(self, catalog, instance: str, ttl: float, clock=time.time, autorenew: bool = True):
        self.catalog, self.instance, self.ttl = catalog, instance, ttl
        self.clock, self.autorenew = clock, autorenew
        self.number: int | None = None
        self.took_over = False  # the lease was taken from a holder that never released it
        self._token = secrets.token_hex(8)
        self._expires = 0.0
        self._lost = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()  # one renewal or release at a time
        self._renewer: threading.Thread | None = None

    # --- records ----------------------------------------------------------------------------------
    def _leases(self) -> dict[int, dict]:
        got = self.catalog.get(where={"kind": "lease"}, include=["documents"])
        return {int(rid.split(":", 1)[1]): json.loads(doc) for rid, doc in zip(got["ids"], got["documents"])}

    def _holds(self, leases: dict[int, dict]) -> bool:
        """Whether this instance's lease is the newest (its number, the fencing token, the highest)."""
        mine = leases.get(self.number)
        return (self.number is not None and max(leases, default=0) == self.number and mine is not None
                and mine["token"] == self._token and not mine["released"])

    def _free(self, rec: dict | None) -> bool:
        return rec is None or rec["released"] or rec["expires_at"] <= self.clock() or rec["instance"] == self.instance

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
        if not self._free(current):
            return current
        number, expires = top + 1, self.clock() + self.ttl
        self.catalog.add(ids=[f"lease:{number}"], embeddings=[_DUMMY], metadatas=[_META],
                         documents=[self._record(expires)])  # ignored if that number is already taken
        now = self._leases()
        # Lost the race for the number, or the holder renewed after we read its record: back off.
        if now.get(number, {}).get("token") != self._token or max(now) != number or not self._free(now.get(top)):
            if now.get(number, {}).get("token") == self._token:  # ours, but on a stale number
                self.catalog.delete(ids=[f"lease:{number}"])
                now.pop(number)
            return now.get(max(now, default=0)) or {"host": "?", "pid": "?"}
        self.number, self._expires = number, expires
        self.took_over = current is not None and not current["released"]
        older = [f"lease:{n}" for n in now if n < number]
        if older:
            self.catalog.delete(ids=older)
        if self.autorenew:
            self._renewer = threading.Thread(target=self._renew, name="hearth-lease", daemon=True)
            self._renewer.start()
        return None

    def renew(self) -> bool:
        """Extend the lease: False, and lost for good, once it ran out or is no longer the newest
        (another instance may be taking over: a late renewal must not resurrect it)."""
        with self._lock:
            if self._lost.is_set() or self.clock() > self._expires or not self._holds(self._leases()):
                return self._lose()
            expires = self.clock() + self.ttl
            # update, not upsert: if whoever took over deleted our record, it stays deleted
            self.catalog.update(ids=[f"lease:{self.number}"], embeddings=[_DUMMY], metadatas=[_META],
                                documents=[self._record(expires)])
            if self.clock() > self._expires or not self._holds(self._leases()):  # the write stalled
                return self._lose()
            self._expires = expires
            return True

    def _lose(self) -> bool:
        self._lost.set()
        return False

    def _renew(self):
        while not self._done.wait(self.ttl / 3):
            try:
                if not self.renew():
                    return
            except Exception:  # the server away for a moment: check() tells once the lease has run out
                continue

    def check(self):
        """The fence before every write: raise LeaseLost unless this instance's lease is in time and
        still the newest in the server."""
        if self._lost.is_set() or self.clock() > self._expires or not self._holds(self._leases()):
            self._lost.set()
            raise LeaseLost("this Hearth instance lost its writer lease on the shared library (it could not "
                            "renew it in time); nothing half-written is kept: run it again")

    def release(self):
        self._done.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.number is None:
            return
        with self._lock:
            try:
                if self._holds(self._leases()):
                    self.catalog.update(ids=[f"lease:{self.number}"], embeddings=[_DUMMY], metadatas=[_META],
                                        documents=[self._record(0.0, released=True)])
            except Exception:  # unreachable: the lease simply expires
                pass
            self.number = None

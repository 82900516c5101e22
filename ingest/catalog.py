"""The manifest's files and journal kept in a Chroma server (HEARTH_CHROMA_URL), so several Hearth
instances share a library: CatalogFiles and CatalogJournal, the server's counterparts of
manifest/files.py and manifest/journal.py, with the same methods.

With an embedded store the manifest is a SQLite file beside it (manifest/). Against a Chroma server
every instance (app, `hearth watch`, `hearth ingest`, on any machine) must see the same documents, so
what the manifest holds lives in the server, in one collection, `hearth-catalog`, one record per
    collection  its embedding model                      id collection:<name>
    file        path, doc_id, size, mtime, hash, chunks  id file:<name>:<sha1 of path>@<lease>
    file-gone   a file removed (a tombstone)             id file:<name>:<sha1 of path>@<lease>
    problem     a file that could not be ingested        id problem:<name>:<sha1 of path>
    journal     a write in flight (see manifest/)        id journal:<name>:<instance>:<doc>:<op>
    generation  changes with every change of files       id generation:<name>
    alias       the rebuild a collection switched to     id alias:<name>
<name> is the collection's physical name (manifest/): its own, or its current rebuild's.
Each record's fields are JSON in its document (Chroma merges metadata on upsert, so stale keys would
linger there); the metadata holds only what is filtered on. Vectors are a dummy [0.0].

What stays per instance, in <home>/: the keyword (BM25) index, a cache rebuilt from the server's
chunks whenever the generation moves (only documents it lacks are fetched), and the writer lock.
Journal entries belong to the instance that wrote them, so one instance's repair never touches
another's write in flight.

A file's record is versioned by the number of the writer lease (lease.py) it was written under,
and readers take the highest: Chroma has no conditional write, so a writer that passed its fence and
stalled before its write lands (after its lease passed to another) must not overwrite the newer
holder's record. Its write lands as an older version and loses. Taking over from a writer that died,
the new holder first writes each file that writer had in flight again under its own number (or a
tombstone), so a late landing of that writer's record never names passages the takeover swept.

Chroma has no multi-record transactions, but one upsert or delete call is applied whole. A
transaction here collects its changes and applies every upsert, then every delete; the order of the
pipeline's steps is chosen so a crash between the two calls leaves a state that repair() resolves
(a journalled doc that a file record still names keeps its chunks; see pipeline.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict
from pathlib import Path

from .manifest import REBUILD_MARK, Database, FileRecord, is_rebuild_of
from .manifest.files import Files

CATALOG = "hearth-catalog"
_DUMMY = [0.0]


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def instance_id(home: Path) -> str:
    """This instance's random id, made once and kept in <home>/instance-id: whose journal entries,
    documents and lease are whose. (A host name and a path can be the same on two machines.)"""
    path = Path(home) / "instance-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".instance-id.{os.getpid()}")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:  # private, as all of HEARTH_HOME
        fh.write(secrets.token_hex(8) + "\n")
    try:
        os.link(tmp, path)  # whole or not at all, and never over another's: two processes agree on one id
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


class Catalog:
    """The `hearth-catalog` collection as a record store, with the open transaction's changes."""

    def __init__(self, client, db: Database):
        self.collection = client.get_or_create_collection(CATALOG, embedding_function=None)
        self.db = db  # the instance's local cache (the keyword index), committed with the catalog's changes
        self.fence = lambda: None  # ServerLibrary: its lease's check, before every write (lease.py)
        self.lease_number = lambda: 0  # ServerLibrary: its lease's number, the version of what it writes
        self._ups: dict[str, tuple[dict, str]] | None = None
        self._dels: list[str] | None = None
        self._older: dict[tuple[str, int], set[str]] | None = None

    def put(self, rid: str, meta: dict, record):
        doc = json.dumps(record)
        if self._ups is not None:
            self._ups[rid] = (meta, doc)
            if rid in self._dels:
                self._dels.remove(rid)
        else:
            self.fence()
            self.collection.upsert(ids=[rid], embeddings=[_DUMMY], metadatas=[meta], documents=[doc])

    def delete(self, *rids: str):
        if self._ups is not None:
            for rid in rids:
                self._ups.pop(rid, None)
                self._dels.append(rid)
        elif rids:
            self.fence()
            self.collection.delete(ids=list(rids))

    def drop_older(self, collection: str, key: str, lease: int):
        """Delete the versions of a file's record older than `lease` (after the new one is written)."""
        if self._older is not None:
            self._older.setdefault((collection, lease), set()).add(key)
        else:
            self.fence()
            self._delete_older(collection, lease, {key})

    def _delete_older(self, collection: str, lease: int, keys: set[str]):
        self.collection.delete(ids=[f"file:{collection}:{k}" for k in keys])  # unversioned: an older store's
        self.collection.delete(where={"$and": [{"collection": collection}, {"key": {"$in": sorted(keys)}},
                                               {"lease": {"$lt": lease}}]})

    def records(self, where: dict) -> list:
        got = self.collection.get(where=where, include=["documents"])
        return [json.loads(doc) for doc in got["documents"]]

    def record(self, rid: str):
        got = self.collection.get(ids=[rid], include=["documents"])
        return json.loads(got["documents"][0]) if got["ids"] else None

    def transaction(self):
        return _Batch(self)


class CatalogFiles(Files):
    """manifest.files.Files over the server's catalog: the same methods, every one but refresh and
    drop its own."""

    def __init__(self, catalog: Catalog, name: str, instance: str, physical: str | None = None):
        self.catalog, self.name = catalog, name
        self.owner = instance
        self.pinned = physical is not None
        self.collection = physical or self.physical()

    def _put(self, rid: str, kind: str, record, **filters):
        self.catalog.put(rid, {"kind": kind, "collection": self.collection, **filters}, record)

    def where(self, kind: str, **filters) -> dict:
        return {"$and": [{"kind": kind}, {"collection": self.collection}] + [{k: v} for k, v in filters.items()]}

    def _put_file(self, key: str, record: dict, doc_id: str | None):
        """A version of a file's record (a tombstone when doc_id is None) under this writer's lease
        number; the older versions go after it."""
        lease = self.catalog.lease_number()
        filters = {"key": key, "lease": lease} | ({"doc_id": doc_id} if doc_id is not None else {})
        self._put(f"file:{self.collection}:{key}@{lease}", "file" if doc_id is not None else "file-gone", record,
                  **filters)
        self.catalog.drop_older(self.collection, key, lease)

    def _versions(self, keys: list[str] | None = None) -> dict[str, tuple[int, str, dict]]:
        """The newest version of each file's record (or of those `keys`): key -> (lease, kind, record)."""
        if keys == []:
            return {}
        where = [{"kind": {"$in": ["file", "file-gone"]}}, {"collection": self.collection}]
        if keys is not None:
            where.append({"key": {"$in": keys}})
        got = self.catalog.collection.get(where={"$and": where}, include=["metadatas", "documents"])
        newest: dict[str, tuple[int, str, dict]] = {}
        for meta, doc in zip(got["metadatas"], got["documents"]):
            record = json.loads(doc)
            key, lease = meta.get("key") or _key(record["path"]), meta.get("lease", 0)  # unversioned: an older store's
            if key not in newest or lease > newest[key][0]:
                newest[key] = (lease, meta["kind"], record)
        return newest

    def outrank(self, keys: list[str]):
        """Write these files' newest records again under this writer's number (a tombstone where there is
        none): a takeover's first step, so what the dead writer had in flight can never land over them."""
        newest = self._versions(sorted(set(keys)))
        with self.catalog.transaction():
            for key in set(keys):
                _, kind, record = newest.get(key, (0, "file-gone", {"key": key}))
                self._put_file(key, record, record["doc_id"] if kind == "file" else None)

    # --- which physical collection ------------------------------------------------------------------
    def physical(self) -> str:
        rec = self.catalog.record(f"alias:{self.name}")
        return rec["physical"] if rec else self.name

    def swap_to(self, physical: str):
        """One upsert switches every instance to the rebuild; the old records go after it (what a
        crash leaves of them, the next write's clean_rebuilds removes)."""
        old = self.collection
        self.catalog.fence()
        self.catalog.collection.upsert(ids=[f"alias:{self.name}"], embeddings=[_DUMMY],
                                       documents=[json.dumps({"physical": physical})],
                                       metadatas=[{"kind": "alias", "collection": f"alias:{self.name}"}])
        self.collection = physical
        self.drop_rows(old)

    def rebuilds(self) -> list[str]:
        got = self.catalog.collection.get(where={"kind": {"$ne": "alias"}}, include=["metadatas"])
        current = self.physical()
        names = {m["collection"] for m in got["metadatas"]}
        return sorted(n for n in names if n != current and (n == self.name or is_rebuild_of(n, self.name)))

    def swept(self) -> bool:
        return False  # other machines rebuild too: only Chroma itself knows what they left

    def set_swept(self, swept: bool):
        pass

    def drop_rows(self, physical: str):
        self.catalog.fence()
        self.catalog.collection.delete(where={"collection": physical})
        with self.catalog.db.transaction():
            self.catalog.db.drop_rows(physical)

    def _bump(self):
        self._put(f"generation:{self.collection}", "generation", {"value": time.time_ns()})

    def generation(self) -> int:
        rec = self.catalog.record(f"generation:{self.collection}")
        return rec["value"] if rec else 0

    # --- the collection's embedding model ---------------------------------------------------------
    def model(self):
        rec = self.catalog.record(f"collection:{self.collection}")
        return (rec["embed_model"], rec["dimension"]) if rec else None

    def set_model(self, embed_model: str, dimension: int):
        self._put(f"collection:{self.collection}", "collection",
                  {"embed_model": embed_model, "dimension": dimension, "created_at": time.time()})

    def collections(self):
        got = self.catalog.collection.get(where={"kind": {"$in": ["collection", "file", "file-gone", "alias"]}},
                                          include=["metadatas", "documents"])
        newest: dict[tuple[str, str], tuple[int, str]] = {}
        models, aliases = {}, {}
        for meta, doc in zip(got["metadatas"], got["documents"]):
            if meta["kind"] in ("file", "file-gone"):
                at = (meta["collection"], meta.get("key") or _key(json.loads(doc)["path"]))
                if at not in newest or meta.get("lease", 0) > newest[at][0]:
                    newest[at] = (meta.get("lease", 0), meta["kind"])
            elif meta["kind"] == "alias":
                aliases[json.loads(doc)["physical"]] = meta["collection"].split(":", 1)[1]
            else:
                models[meta["collection"]] = json.loads(doc)
        files: dict[str, int] = {}
        for (collection, _), (_, kind) in newest.items():
            files[collection] = files.get(collection, 0) + (kind == "file")
        return sorted((aliases.get(p, p), m["embed_model"], m["dimension"], files.get(p, 0)) for p, m in models.items()
                      if p in aliases or (REBUILD_MARK not in p and p not in aliases.values()))

    # --- files --------------------------------------------------------------------------------------
    def records(self) -> dict[str, FileRecord]:
        records = sorted((FileRecord(**r) for _, kind, r in self._versions().values() if kind == "file"),
                         key=lambda r: r.path)
        return {r.path: r for r in records}

    def page(self, search: str = "", sort: str = "path", descending: bool = False, offset: int = 0,
             limit: int = 50) -> tuple[list[FileRecord], int]:
        """Files.page, over the records read from the server (it has no query for it)."""
        field = {"indexed": "indexed_at"}.get(sort, sort)
        found = [r for r in self.records().values() if search.lower() in r.path.lower()]
        found.sort(key=lambda r: r.path)
        found.sort(key=lambda r: (getattr(r, field) is None, getattr(r, field) or 0) if field != "path"
                   else r.path, reverse=descending)
        return found[offset : offset + limit], len(found)

    def get(self, path: str) -> FileRecord | None:
        return self.records().get(path)

    def totals(self) -> tuple[int, int]:
        records = self.records().values()
        return len(records), sum(r.chunks for r in records)

    def has_files(self) -> bool:
        return bool(self.catalog.collection.get(where=self.where("file"), limit=1, include=[])["ids"])

    def live_doc_ids(self, doc_ids) -> set[str]:
        doc_ids = list(set(doc_ids))
        if not doc_ids:
            return set()
        got = self.catalog.collection.get(where=self.where("file", doc_id={"$in": doc_ids}), include=["documents"])
        keys = sorted({_key(json.loads(doc)["path"]) for doc in got["documents"]})
        return {r["doc_id"] for _, kind, r in self._versions(keys).values() if kind == "file"} & set(doc_ids)

    def put(self, rec: FileRecord):
        self._put_file(_key(rec.path), asdict(rec), rec.doc_id)
        self._bump()

    def delete(self, path: str):
        self._put_file(_key(path), {"key": _key(path)}, None)
        self._bump()

    def touch(self, rec: FileRecord, size: int, mtime_ns: int):
        self._put_file(_key(rec.path), {**asdict(rec), "size": size, "mtime_ns": mtime_ns}, rec.doc_id)

    # --- problems ---------------------------------------------------------------------------------
    def problems(self) -> dict[str, tuple[str, int, int]]:
        rows = sorted(self.catalog.records(self.where("problem")), key=lambda r: r["path"])
        return {r["path"]: (r["reason"], r["size"], r["mtime_ns"]) for r in rows}

    def put_problem(self, path: str, reason: str, size: int | None, mtime_ns: int | None):
        self._put(f"problem:{self.collection}:{_key(path)}", "problem",
                  {"path": path, "reason": reason, "size": size, "mtime_ns": mtime_ns, "at": time.time()})

    def clear_problem(self, path: str):
        self.catalog.delete(f"problem:{self.collection}:{_key(path)}")


class CatalogJournal:
    """manifest.journal.Journal over the server's catalog: entries are this instance's own."""

    def __init__(self, files: CatalogFiles):
        self.files = files

    def _id(self, doc_id: str, op: str) -> str:
        return f"journal:{self.files.collection}:{self.files.owner}:{doc_id}:{op}"

    def entries(self) -> list[tuple[str, str]]:
        return [tuple(e) for e in self.files.catalog.records(self.files.where("journal", instance=self.files.owner))]

    def add(self, doc_id: str, op: str, path: str | None = None):
        """`path`: the file whose record an "add" will write (see outrank)."""
        filters = {"file_key": _key(path)} if path is not None else {}
        self.files._put(self._id(doc_id, op), "journal", [doc_id, op], instance=self.files.owner, **filters)

    def adding(self) -> list[str]:
        """The keys of the files whose records any instance's writes in flight are about to write."""
        got = self.files.catalog.collection.get(where=self.files.where("journal"), include=["metadatas"])
        return [m["file_key"] for m in got["metadatas"] if "file_key" in m]

    def done(self, doc_id: str, op: str):
        self.files.catalog.delete(self._id(doc_id, op))

    def clear(self):
        """Every instance's entries (after a sweep, under the lease: none is in flight)."""
        self.files.catalog.fence()
        self.files.catalog.collection.delete(where=self.files.where("journal"))


class _Batch:
    """A transaction: the local keyword cache in a SQLite transaction, the catalog's changes applied
    on success as one upsert call and then one delete call (the cache commits only if both did)."""

    def __init__(self, catalog: Catalog):
        self.c = catalog

    def __enter__(self):
        self.c.db.execute("BEGIN IMMEDIATE")
        self.c._ups, self.c._dels, self.c._older = {}, [], {}
        return self.c.db

    def __exit__(self, exc_type, *_):
        ups, dels, older = self.c._ups, self.c._dels, self.c._older
        self.c._ups = self.c._dels = self.c._older = None
        try:
            if exc_type is None and (ups or dels):
                self.c.fence()  # a writer whose lease was taken over writes nothing (lease.py)
            if exc_type is None and ups:
                ids = list(ups)
                self.c.collection.upsert(ids=ids, embeddings=[_DUMMY] * len(ids), metadatas=[ups[i][0] for i in ids],
                                         documents=[ups[i][1] for i in ids])
            if exc_type is None and dels:
                self.c.collection.delete(ids=list(dict.fromkeys(dels)))
            for (collection, lease), keys in (older.items() if exc_type is None else ()):
                self.c._delete_older(collection, lease, keys)
        except BaseException:
            self.c.db.execute("ROLLBACK")
            raise
        self.c.db.execute("ROLLBACK" if exc_type else "COMMIT")

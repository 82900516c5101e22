"""Conversations that last: chats and their answers in SQLite ($HEARTH_HOME/chats.sqlite3).

    chats = Chats(settings)
    chat = chats.create("work", "How long do I keep receipts?")
    stream = SavedStream(answer_stream, chats, chat.id)   # saves the answer as it streams
    chats.list("work")                                     # newest first
    chats.answers(chat.id)                                 # the turns, as Answer objects again

Each turn is saved when the question is asked, again before every piece of the answer is handed
on (so a `kill -9` loses nothing that was shown), and when it ends. A turn still marked `answering`
whose writer process is gone was cut off: it comes back incomplete, with that said. An answer is
stored whole (passages, citations, support marks), so a resumed chat shows what it showed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.settings import Settings, secure_home

from .answer import Answer, AnswerStream, Citation
from .llm_server import process_start_time
from .retrieval import Hit
from .support import Sentence

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, collection TEXT NOT NULL, title TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS chats_by_time ON chats (collection, updated_at);
CREATE TABLE IF NOT EXISTS turns (
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE, n INTEGER NOT NULL,
    question TEXT NOT NULL, answer TEXT NOT NULL, record TEXT NOT NULL,
    status TEXT NOT NULL,            -- answering | done
    pid INTEGER, pid_start INTEGER,  -- who is writing an answering turn
    PRIMARY KEY (chat_id, n));
"""
UNREADABLE = "this saved answer can't be read: its question and text are shown, without sources or marks"
CUT_OFF = "this answer was cut off (Hearth stopped while it was being written); the part shown is kept"
TITLE_CHARS = 80


@dataclass
class Chat:
    id: str
    collection: str
    title: str
    created_at: float
    updated_at: float
    turns: int = 0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def title_for(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"


def record(answer: Answer) -> str:
    return json.dumps(dataclasses.asdict(answer))


def from_record(text: str) -> Answer:
    return _answer(json.loads(text))


def _answer(d: dict) -> Answer:
    d["passages"] = [Hit(**h) for h in d["passages"]]
    d["citations"] = [Citation(**{**c, "span": tuple(c["span"]) if c.get("span") else None}) for c in d["citations"]]
    d["sentences"] = [_sentence(x) for x in d["sentences"]]
    d["lead"] = _sentence(d["lead"]) if d.get("lead") else None
    d["retry"] = _answer(d["retry"]) if d.get("retry") else None  # a second attempt (rag/answer.py)
    return Answer(**d)


def _sentence(x: dict) -> Sentence:
    return Sentence(**{**x, "span": tuple(x["span"]) if x.get("span") else None})


class Chats:
    def __init__(self, settings: Settings):
        path = Path(settings.home) / "chats.sqlite3"
        secure_home(path.parent)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # the chats are private: 0600 from the start
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- chats ------------------------------------------------------------------------------------
    def create(self, collection: str, question: str) -> Chat:
        now = time.time()
        chat = Chat(secrets.token_hex(4), collection, title_for(question) or "New chat", now, now)
        self.db.execute("INSERT INTO chats VALUES (?, ?, ?, ?, ?)",
                        (chat.id, chat.collection, chat.title, now, now))
        return chat

    def get(self, chat_id: str) -> Chat | None:
        rows = self._chats("WHERE c.id = ?", (chat_id,))
        return rows[0] if rows else None

    def list(self, collection: str | None = None, search: str = "") -> list[Chat]:
        """Newest first; `search` finds words in titles, questions and answers (case-insensitive)."""
        where, args = [], []
        if collection is not None:
            where.append("c.collection = ?")
            args.append(collection)
        for word in search.split():
            like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM turns s WHERE s.chat_id = c.id "
                         "AND (s.question LIKE ? ESCAPE '\\' OR s.answer LIKE ? ESCAPE '\\')))")
            args += [like, like, like]
        return self._chats(("WHERE " + " AND ".join(where)) if where else "", tuple(args))

    def _chats(self, where: str, args: tuple) -> list[Chat]:
        rows = self.db.execute(
            "SELECT c.id, c.collection, c.title, c.created_at, c.updated_at, "
            f"(SELECT COUNT(*) FROM turns t WHERE t.chat_id = c.id) FROM chats c {where} "
            "ORDER BY c.updated_at DESC, c.created_at DESC", args).fetchall()
        return [Chat(*row) for row in rows]

    def rename(self, chat_id: str, title: str) -> bool:
        title = title_for(title)
        if not title:
            raise ValueError("a chat's title can't be empty")
        return self.db.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id)).rowcount > 0

    def delete(self, chat_id: str) -> bool:
        return self.db.execute("DELETE FROM chats WHERE id = ?", (chat_id,)).rowcount > 0

    # --- turns ------------------------------------------------------------------------------------
    def answers(self, chat_id: str) -> list[Answer]:
        """The chat's answers in order; one whose writer died mid-answer comes back marked cut off."""
        out = []
        for question, text, record_text, status, pid, pid_start in self.db.execute(
                "SELECT question, answer, record, status, pid, pid_start FROM turns WHERE chat_id = ? ORDER BY n",
                (chat_id,)):
            try:
                answer = from_record(record_text)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:  # damaged, or from another version
                answer = Answer(question, text, [], [], "", error=f"{UNREADABLE} ({type(exc).__name__}: {str(exc)[:120]})")
            if status == "answering" and not _alive(pid, pid_start):
                answer.incomplete = True
                answer.error = CUT_OFF
            out.append(answer)
        return out

    def history(self, chat_id: str) -> list[tuple[str, str]]:
        """(question, answer) of the turns with an answer: what a follow-up is condensed with."""
        return [(a.question, a.answer) for a in self.answers(chat_id) if a.answer]

    def begin(self, chat_id: str, answer: Answer) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            n = self.db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE chat_id = ?", (chat_id,)).fetchone()[0]
            pid = os.getpid()
            self.db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, 'answering', ?, ?)",
                            (chat_id, n, answer.question, answer.answer, record(answer), pid, process_start_time(pid)))
            self.db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (time.time(), chat_id))
        return n

    def save(self, chat_id: str, n: int, answer: Answer, done: bool = False):
        self.db.execute("UPDATE turns SET answer = ?, record = ?, status = ? WHERE chat_id = ? AND n = ?",
                        (answer.answer, record(answer), "done" if done else "answering", chat_id, n))


def _alive(pid: int | None, start: int | None) -> bool:
    return bool(pid) and process_start_time(pid) == start and start is not None


class SavedStream:
    """An AnswerStream that saves its answer into a chat as it goes (same interface)."""

    def __init__(self, stream: AnswerStream, chats: Chats, chat_id: str):
        self.stream, self.chats, self.chat_id = stream, chats, chat_id
        self.passages, self.result = stream.passages, stream.result
        self.n = chats.begin(chat_id, self.result)

    def lead(self):
        return self.stream.lead()

    def __iter__(self):
        text, finished = "", False
        try:
            for delta in self.stream:
                text += delta
                self.result.answer = text  # the raw text so far; cleaned when the stream ends
                self.chats.save(self.chat_id, self.n, self.result)
                yield delta
            finished = True
        finally:
            if not finished:  # the reader stopped early (a page closed mid-answer): kept, marked
                self.result.incomplete = True
                self.result.error = self.result.error or CUT_OFF
            self.chats.save(self.chat_id, self.n, self.result, done=True)

    def collect(self) -> Answer:
        for _ in self:
            pass
        return self.result

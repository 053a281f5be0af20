"""The ratings database (SQLite): every answer is committed the moment a rater gives it.

One row per rater (their session: the order in which they get the pairs, when they started and finished) and one
row per answer, updated in place when a rater changes their mind; every change is also appended to ``events``, so
the history of a session can be replayed. The database is bound to one listening test (its ``test_id``).

Tables::

    meta(key, value)                                        test_id, schema version
    raters(rater, started, finished, pair_order)            pair_order: JSON list of pair ids
    preferences(rater, pair_id, choice, updated)            choice: 'A', 'B' or 'none'
    ratings(rater, pair_id, side, question, score, updated) side: 'A' or 'B'; score: 1..5
    listens(rater, pair_id, side, played_s, ended, updated) furthest point played; played to the end once
    comments(rater, pair_id, text, updated)
    events(id, t, rater, pair_id, kind, side, question, value)

Each call opens its own connection, so one :class:`RatingStore` can be shared by the threads of a web server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import sqlite3
import time
import typing as tp
from pathlib import Path

SCHEMA_VERSION = "1"
CHOICES = ("A", "B", "none")
SIDES = ("A", "B")
RATER_RE = re.compile(r"^[\w][\w .@+-]{0,63}$")
MAX_COMMENT = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters(
    rater TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, pair_order TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS preferences(
    rater TEXT NOT NULL, pair_id TEXT NOT NULL, choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'none')),
    updated REAL NOT NULL, PRIMARY KEY (rater, pair_id));
CREATE TABLE IF NOT EXISTS ratings(
    rater TEXT NOT NULL, pair_id TEXT NOT NULL, side TEXT NOT NULL CHECK (side IN ('A', 'B')),
    question TEXT NOT NULL, score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5), updated REAL NOT NULL,
    PRIMARY KEY (rater, pair_id, side, question));
CREATE TABLE IF NOT EXISTS listens(
    rater TEXT NOT NULL, pair_id TEXT NOT NULL, side TEXT NOT NULL CHECK (side IN ('A', 'B')),
    played_s REAL NOT NULL, ended INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY (rater, pair_id, side));
CREATE TABLE IF NOT EXISTS comments(
    rater TEXT NOT NULL, pair_id TEXT NOT NULL, text TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (rater, pair_id));
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL NOT NULL, rater TEXT NOT NULL, pair_id TEXT, kind TEXT NOT NULL,
    side TEXT, question TEXT, value TEXT);
"""


class AnswerError(ValueError):
    """An answer that cannot be stored: unknown rater, pair, side, question, or a value out of range."""


def check_rater(rater: tp.Any) -> str:
    """A rater name: 1-64 characters, letters, digits, spaces and ``._@+-``, starting with a letter or digit."""
    if not isinstance(rater, str) or not RATER_RE.match(rater.strip()):
        raise AnswerError(f"rater={rater!r}: use 1 to 64 letters, digits, spaces or . _ @ + - (e.g. 'alice')")
    return rater.strip()


class RatingStore:
    """Answers of the raters of one listening test, in the SQLite file ``path``."""

    def __init__(self, path: Path, test_id: str, pair_ids: tp.Sequence[str], questions: tp.Sequence[str],
                 require_listen: tp.Optional[bool] = None):
        """Open (or create) the database. ``require_listen``: a pair is complete only once both clips were played
        to the end; it is stored in the database, and ``None`` reads the stored value (default True)."""
        self.path = Path(path)
        self.test_id = test_id
        self.pair_ids = list(pair_ids)
        self.questions = list(questions)
        self._pair_set = set(self.pair_ids)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            db.executescript(_SCHEMA)
        finally:
            db.close()
        with self._connect() as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                               [("test_id", test_id), ("schema", SCHEMA_VERSION)])
            elif rows.get("test_id") != test_id:
                raise ValueError(f"the ratings database {self.path} belongs to another listening test "
                                 f"(test_id {rows.get('test_id')}, not {test_id}); pass --db with a new file")
            if require_listen is None:
                require_listen = rows.get("require_listen", "1") == "1"
            db.execute("INSERT INTO meta(key, value) VALUES ('require_listen', ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = excluded.value", ("1" if require_listen else "0",))
        self.require_listen = bool(require_listen)

    @contextlib.contextmanager
    def _connect(self) -> tp.Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # an answer acknowledged to the page survives a power cut
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- sessions --------------------------------------------------------------------------------------------

    def pair_order(self, rater: str) -> tp.List[str]:
        """The order in which ``rater`` gets the pairs: a shuffle seeded by the test and the rater's name."""
        digest = hashlib.sha256(f"{self.test_id}/{rater}".encode()).digest()
        order = list(self.pair_ids)
        random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
        return order

    def start(self, rater: str) -> tp.Dict[str, tp.Any]:
        """Open ``rater``'s session (new or resumed); returns :meth:`session`."""
        rater = check_rater(rater)
        now = time.time()
        with self._connect() as db:
            if db.execute("SELECT 1 FROM raters WHERE rater = ?", (rater,)).fetchone() is None:
                db.execute("INSERT INTO raters(rater, started, pair_order) VALUES (?, ?, ?)",
                           (rater, now, json.dumps(self.pair_order(rater))))
                db.execute("INSERT INTO events(t, rater, kind) VALUES (?, ?, 'start')", (now, rater))
            else:
                db.execute("INSERT INTO events(t, rater, kind) VALUES (?, ?, 'resume')", (now, rater))
        return self.session(rater)

    def session(self, rater: str) -> tp.Dict[str, tp.Any]:
        """Everything ``rater`` answered so far, keyed by pair id, and their pair order::

            {"rater", "order": [pair ids], "answers": {pair_id: {"preference", "ratings": {"A": {q: score}},
             "listened": {"A": {"played_s", "ended"}}, "comment", "complete"}}, "n_complete", "finished"}
        """
        rater = check_rater(rater)
        with self._connect() as db:
            row = db.execute("SELECT pair_order, finished FROM raters WHERE rater = ?", (rater,)).fetchone()
            if row is None:
                raise AnswerError(f"rater {rater!r} has no session; start one first")
            answers: tp.Dict[str, tp.Dict[str, tp.Any]] = {
                pid: {"preference": None, "ratings": {"A": {}, "B": {}}, "listened": {}, "comment": ""}
                for pid in self.pair_ids}
            for pid, choice in db.execute("SELECT pair_id, choice FROM preferences WHERE rater = ?", (rater,)):
                answers[pid]["preference"] = choice
            for pid, side, q, score in db.execute(
                    "SELECT pair_id, side, question, score FROM ratings WHERE rater = ?", (rater,)):
                answers[pid]["ratings"][side][q] = score
            for pid, side, played, ended in db.execute(
                    "SELECT pair_id, side, played_s, ended FROM listens WHERE rater = ?", (rater,)):
                answers[pid]["listened"][side] = {"played_s": played, "ended": bool(ended)}
            for pid, text in db.execute("SELECT pair_id, text FROM comments WHERE rater = ?", (rater,)):
                answers[pid]["comment"] = text
        for answer in answers.values():
            answer["complete"] = self._complete(answer)
        return {"rater": rater, "order": json.loads(row[0]), "answers": answers, "finished": row[1] is not None,
                "n_complete": sum(a["complete"] for a in answers.values())}

    def _complete(self, answer: tp.Dict[str, tp.Any]) -> bool:
        if answer["preference"] is None:
            return False
        if any(q not in answer["ratings"][s] for s in SIDES for q in self.questions):
            return False
        return not self.require_listen or all(answer["listened"].get(s, {}).get("ended") for s in SIDES)

    # -- answers ---------------------------------------------------------------------------------------------

    def record(self, rater: str, pair_id: str, kind: str, value: tp.Any, side: tp.Optional[str] = None,
               question: tp.Optional[str] = None) -> tp.Dict[str, tp.Any]:
        """Store one answer at once and return ``{"complete": this pair is done, "n_complete", "finished"}``.

        ``kind`` is ``preference`` (value 'A', 'B' or 'none'), ``rating`` (``side``, ``question``, value 1-5),
        ``listen`` (``side``, value ``{"played_s": seconds, "ended": bool}``; the furthest point is kept) or
        ``comment`` (value: text).
        """
        rater = check_rater(rater)
        if not isinstance(pair_id, str) or pair_id not in self._pair_set:
            raise AnswerError(f"pair_id={pair_id!r} is not a pair of this listening test")
        if not isinstance(kind, str):
            raise AnswerError(f"kind={kind!r}: use 'preference', 'rating', 'listen' or 'comment'")
        if side is not None and not isinstance(side, str) or question is not None and not isinstance(question, str):
            raise AnswerError(f"side={side!r}, question={question!r}: send them as text")
        if kind in ("rating", "listen") and side not in SIDES:
            raise AnswerError(f"side={side!r}: use 'A' or 'B'")
        now = time.time()
        with self._connect() as db:
            if db.execute("SELECT 1 FROM raters WHERE rater = ?", (rater,)).fetchone() is None:
                raise AnswerError(f"rater {rater!r} has no session; start one first")
            if kind == "preference":
                if value not in CHOICES:
                    raise AnswerError(f"preference={value!r}: use 'A', 'B' or 'none'")
                db.execute("INSERT INTO preferences VALUES (?, ?, ?, ?) ON CONFLICT(rater, pair_id) DO UPDATE "
                           "SET choice = excluded.choice, updated = excluded.updated", (rater, pair_id, value, now))
            elif kind == "rating":
                if question not in self.questions:
                    raise AnswerError(f"question={question!r}: use one of {self.questions}")
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                    raise AnswerError(f"score={value!r}: use a whole number from 1 to 5")
                db.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(rater, pair_id, side, question) "
                           "DO UPDATE SET score = excluded.score, updated = excluded.updated",
                           (rater, pair_id, side, question, value, now))
            elif kind == "listen":
                # Types are checked, not converted: bool("false") is True, float("1e308") a number.
                if not isinstance(value, dict) or set(value) != {"played_s", "ended"}:
                    raise AnswerError(f"listen value {value!r}: send {{'played_s': seconds, 'ended': true|false}}")
                played, ended = value["played_s"], value["ended"]
                if isinstance(played, bool) or not isinstance(played, (int, float)):
                    raise AnswerError(f"played_s={played!r}: send a number of seconds")
                if not isinstance(ended, bool):
                    raise AnswerError(f"ended={ended!r}: send true or false (JSON booleans, not text)")
                played = float(played)
                if not 0.0 <= played < 1e5:
                    raise AnswerError(f"played_s={played!r} must be a number of seconds >= 0")
                db.execute("INSERT INTO listens VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(rater, pair_id, side) DO UPDATE "
                           "SET played_s = max(played_s, excluded.played_s), ended = max(ended, excluded.ended), "
                           "updated = excluded.updated", (rater, pair_id, side, played, int(ended), now))
                value = json.dumps({"played_s": played, "ended": ended})
            elif kind == "comment":
                if not isinstance(value, str) or len(value) > MAX_COMMENT:
                    raise AnswerError(f"comment: send text of at most {MAX_COMMENT} characters")
                db.execute("INSERT INTO comments VALUES (?, ?, ?, ?) ON CONFLICT(rater, pair_id) DO UPDATE "
                           "SET text = excluded.text, updated = excluded.updated", (rater, pair_id, value, now))
            else:
                raise AnswerError(f"kind={kind!r}: use 'preference', 'rating', 'listen' or 'comment'")
            db.execute("INSERT INTO events(t, rater, pair_id, kind, side, question, value) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (now, rater, pair_id, kind, side, question, str(value)))
        state = self.session(rater)
        if state["n_complete"] == len(self.pair_ids) and not state["finished"]:
            with self._connect() as db:
                db.execute("UPDATE raters SET finished = ? WHERE rater = ? AND finished IS NULL", (now, rater))
                db.execute("INSERT INTO events(t, rater, kind) VALUES (?, ?, 'finish')", (now, rater))
            state["finished"] = True
        return {"complete": state["answers"][pair_id]["complete"], "n_complete": state["n_complete"],
                "finished": state["finished"]}

    # -- reading everything back -----------------------------------------------------------------------------

    def progress(self) -> tp.List[tp.Dict[str, tp.Any]]:
        """Per rater: pairs complete out of all, and whether they finished."""
        with self._connect() as db:
            raters = [r[0] for r in db.execute("SELECT rater FROM raters ORDER BY started")]
        out = []
        for rater in raters:
            s = self.session(rater)
            out.append({"rater": rater, "complete": s["n_complete"], "total": len(self.pair_ids),
                        "finished": s["finished"]})
        return out

    def answers(self) -> tp.List[tp.Dict[str, tp.Any]]:
        """One flat record per (rater, pair) with any answer: rater, pair_id, preference, ``<question>_A`` and
        ``<question>_B`` scores, ``played_A_s``, ``played_B_s``, ``ended_A``, ``ended_B``, comment, complete."""
        with self._connect() as db:
            raters = [r[0] for r in db.execute("SELECT rater FROM raters ORDER BY started")]
        rows = []
        for rater in raters:
            s = self.session(rater)
            for pid in s["order"]:
                a = s["answers"][pid]
                if a["preference"] is None and not any(a["ratings"].values()) and not a["listened"]:
                    continue
                row = {"rater": rater, "pair_id": pid, "preference": a["preference"]}
                for side in SIDES:
                    for q in self.questions:
                        row[f"{q}_{side}"] = a["ratings"][side].get(q)
                for side in SIDES:
                    listened = a["listened"].get(side, {})
                    row[f"played_{side}_s"] = listened.get("played_s")
                    row[f"ended_{side}"] = listened.get("ended", False)
                row["comment"] = a["comment"]
                row["complete"] = a["complete"]
                rows.append(row)
        return rows

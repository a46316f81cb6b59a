"""The run state: one SQLite file in the run directory (``state.sqlite``).

It records

* ``files``: the checksum (SHA-256) of every file a task read or wrote,
  cached by (size, modification time) so that a rerun does not read an
  unchanged file again;
* ``tasks``: every task of the graph with its status (``running``, ``done``,
  ``failed``, ``skipped``), its fingerprint, its timings, its error and the
  number of times it was started (``attempts``);
* ``products``: the files a finished task wrote, with size, time and checksum;
* ``sessions``: every mkrefs call on this run directory.

A task's *fingerprint* is the hash of what it was asked to do (its
parameters) and of the checksums of the files it read.  A rerun reuses a task
whose record says ``done`` with the same fingerprint and whose products are
on disk unchanged; everything else (failed, interrupted, changed inputs,
products deleted or modified) is done again.

Only the main process writes here, and a task is recorded ``done`` only after
its products are in place (they are written atomically), so the state never
claims a product that is not complete on disk.  A session killed at any
moment leaves its running tasks as ``running``: the next one redoes them.

The run directory is locked (``fcntl.flock`` on ``.mkrefs.lock``) while a
session uses it, so a second mkrefs on the same run directory is refused
instead of racing the first.
"""

from __future__ import annotations

import fcntl
import logging
import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from .io import file_checksum

__all__ = ["RunState", "RunLocked", "file_checksum", "STATE_NAME"]

log = logging.getLogger(__name__)

STATE_NAME = "state.sqlite"
LOCK_NAME = ".mkrefs.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT, finished TEXT, pid INTEGER,
    argv TEXT, executor TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS inputs (
    path TEXT PRIMARY KEY, sha256 TEXT, session INTEGER);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, stage TEXT, label TEXT, status TEXT, fingerprint TEXT,
    spec TEXT, session INTEGER, attempts INTEGER DEFAULT 0, started TEXT, finished TEXT,
    seconds REAL, error TEXT, errorfile TEXT, result TEXT);
CREATE TABLE IF NOT EXISTS products (
    path TEXT PRIMARY KEY, task TEXT, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class RunLocked(RuntimeError):
    """Another mkrefs session holds the run directory."""


class RunState:
    """The SQLite state of one run directory (see the module docstring)."""

    def __init__(self, rundir, lock: bool = True, verify: bool = False):
        #: verify: every checksum is computed from the bytes (--verify-inputs), not taken
        #: from the cache of size, mtime and inode
        self.verify = verify
        self._verified: set = set()
        self.rundir = Path(rundir)
        self.path = self.rundir / STATE_NAME
        self._lock_fd = None
        if lock:
            self._lock()
        try:
            self._open()
        except sqlite3.DatabaseError as exc:     # not a database, or a damaged one
            aside = self.path.with_name(f"{STATE_NAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    os.replace(part, Path(str(aside) + suffix))
            self.moved_aside = aside
            log.warning("the run state %s is unreadable (%s); moved aside as %s: this session "
                        "starts a new one (pipeline products on disk are reused by their "
                        "recorded checksums, the rest is made again)", self.path, exc,
                        aside.name)
            self._open()
        if "inode" not in {r[1] for r in self.db.execute("PRAGMA table_info(files)")}:
            self.db.execute("ALTER TABLE files ADD COLUMN inode INTEGER")   # older states
        self.session = None

    moved_aside = None

    def _open(self) -> None:
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
            if self.db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
        except sqlite3.DatabaseError:
            self.db.close()
            raise

    # -- locking --------------------------------------------------------------
    def _lock(self) -> None:
        lock_path = self.rundir / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip()
            os.close(fd)
            raise RunLocked(
                f"another mkrefs session is using the run directory {self.rundir} "
                f"({holder or 'pid unknown'}); wait for it to finish, or start another "
                f"run (--new-run, or another output.runID)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {_now()}".encode())
        self._lock_fd = fd

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def remove_stale_temporaries(self) -> list[str]:
        """Remove the private temporary directories a killed session left in the run
        directory (``.<name>.XXXX.tmp`` of the atomic writers, ``.run-*`` of pipeline
        runs).  Safe only while holding the lock: no other session writes here."""
        if self._lock_fd is None:
            raise RuntimeError("remove_stale_temporaries needs the run directory's lock")
        import shutil
        removed = []
        for dirpath, dirnames, _ in os.walk(self.rundir):
            for d in list(dirnames):
                if d.startswith(".") and (d.endswith(".tmp") or d.startswith(".run-")):
                    shutil.rmtree(os.path.join(dirpath, d), ignore_errors=True)
                    removed.append(os.path.join(dirpath, d))
                    dirnames.remove(d)
        return removed

    # -- sessions ---------------------------------------------------------------
    def begin_session(self, executor: str, argv=None) -> int:
        cur = self.db.execute(
            "INSERT INTO sessions (started, pid, argv, executor, status) VALUES (?,?,?,?,?)",
            (_now(), os.getpid(), json.dumps(list(sys.argv if argv is None else argv)),
             executor, "running"))
        self.session = cur.lastrowid
        return self.session

    def end_session(self, status: str) -> None:
        if self.session is not None:
            self.db.execute("UPDATE sessions SET finished=?, status=? WHERE id=?",
                            (_now(), status, self.session))

    # -- checksums -------------------------------------------------------------
    def checksum(self, path) -> str | None:
        """The file's SHA-256 (cached by size, mtime and inode unless ``verify``); None
        when it does not exist."""
        path = str(Path(path).absolute())
        try:
            st = os.stat(path)
        except OSError:
            return None
        row = self.db.execute("SELECT size, mtime_ns, inode, sha256 FROM files WHERE path=?",
                              (path,)).fetchone()
        if row and tuple(row[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino) and (
                not self.verify or path in self._verified):
            return row[3]
        digest = file_checksum(path)
        self.db.execute("INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256) "
                        "VALUES (?,?,?,?,?)", (path, st.st_size, st.st_mtime_ns, st.st_ino,
                                               digest))
        self._verified.add(path)
        return digest

    def record_inputs(self, paths) -> None:
        """The input files of this session, with their checksums."""
        with self.db:
            for p in paths:
                self.db.execute("INSERT OR REPLACE INTO inputs VALUES (?,?,?)",
                                (str(Path(p).absolute()), self.checksum(p), self.session))

    def fingerprint(self, fp_data: dict, inputs) -> str:
        """Hash of a task's parameters and of the checksums of the files it reads."""
        h = hashlib.sha256(json.dumps(fp_data, sort_keys=True, default=str).encode())
        for p in sorted(set(str(x) for x in inputs)):
            h.update(f"\n{p}={self.checksum(p)}".encode())
        return h.hexdigest()

    # -- tasks -----------------------------------------------------------------
    def record(self, task_id: str) -> dict | None:
        row = self.db.execute(
            "SELECT id, stage, label, status, fingerprint, spec, attempts, seconds, error, "
            "errorfile, result FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "stage", "label", "status", "fingerprint", "spec", "attempts", "seconds",
                "error", "errorfile", "result")
        rec = dict(zip(keys, row))
        rec["spec"] = json.loads(rec["spec"] or "{}")
        rec["result"] = json.loads(rec["result"] or "{}")
        return rec

    def products_intact(self, task_id: str) -> bool:
        """Every product recorded for the task is on disk, unchanged."""
        rows = self.db.execute("SELECT path, size, mtime_ns FROM products WHERE task=?",
                               (task_id,)).fetchall()
        if not rows:
            return False
        for path, size, mtime in rows:
            try:
                st = os.stat(path)
            except OSError:
                return False
            if st.st_size != size or st.st_mtime_ns != mtime:
                return False
        return True

    def reusable(self, task_id: str, fingerprint: str) -> dict | None:
        """The recorded result when the task is done, the same and intact; else None."""
        rec = self.record(task_id)
        if (rec and rec["status"] == "done" and rec["fingerprint"] == fingerprint
                and self.products_intact(task_id)):
            return rec
        return None

    def started(self, task_id: str, stage: str, label: str, spec: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO tasks (id, stage, label, status, spec, session, attempts, started) "
                "VALUES (?,?,?,?,?,?,1,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status, "
                "spec=excluded.spec, session=excluded.session, attempts=attempts+1, "
                "started=excluded.started, finished=NULL, error=NULL",
                (task_id, stage, label, "running", json.dumps(spec, default=str),
                 self.session, _now()))

    def finished(self, task_id: str, result: dict, fingerprint: str | None) -> None:
        """Record a task's end; its products (``result['outputs']``) when it succeeded."""
        status = "done" if result.get("ok") else ("skipped" if result.get("skipped")
                                                  else "failed")
        with self.db:
            self.db.execute("DELETE FROM products WHERE task=?", (task_id,))
            if status == "done":
                for p in result.get("outputs", []):
                    st = os.stat(p)
                    self.db.execute("INSERT OR REPLACE INTO products VALUES (?,?,?,?,?)",
                                    (str(Path(p).absolute()), task_id, st.st_size,
                                     st.st_mtime_ns, self.checksum(p)))
            self.db.execute(
                "UPDATE tasks SET status=?, fingerprint=?, finished=?, seconds=?, error=?, "
                "errorfile=?, result=? WHERE id=?",
                (status, fingerprint if status == "done" else None, _now(),
                 float(result.get("seconds", 0.0)), result.get("error", ""),
                 result.get("errorfile", ""), json.dumps(result, default=str), task_id))

    def producer(self, path) -> str | None:
        """The task recorded as having written ``path``."""
        row = self.db.execute("SELECT task FROM products WHERE path=?",
                              (str(Path(path).absolute()),)).fetchone()
        return row[0] if row else None

    def task_rows(self) -> list[dict]:
        cur = self.db.execute("SELECT id, stage, label, status, attempts, seconds, error "
                              "FROM tasks ORDER BY rowid")
        keys = ("id", "stage", "label", "status", "attempts", "seconds", "error")
        return [dict(zip(keys, r)) for r in cur.fetchall()]

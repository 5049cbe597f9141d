"""The checkpoint watcher: upload finished checkpoints to R2, verify them, free the local disk.

One pass (:meth:`CheckpointWatcher.run_pass`):

1. list ``directory/<pattern>`` (ignoring ``exclude``, ``*.tmp``, markers and dot files);
2. keep those that are complete (:func:`completeness`): never a file still being written;
3. oldest first, advance each through the journal's states (:mod:`maya_asr.ops.journal`):
   hash -> multipart upload (resumable) -> verify -> delete, where delete happens only when the
   remote copy is verified AND the file is not among the newest ``keep_local`` checkpoints AND the
   local bytes still hash to what was verified.

Verification = HEAD size == local size, HEAD metadata SHA-256 == local SHA-256, SHA-256 of the
bytes read back from the server == local SHA-256; plus, just before deletion, the local file's
size, mtime and SHA-256 are checked again against the verified values.

``MAYA_WATCHER_CRASHPOINT=<phase>`` makes the process SIGKILL itself at that phase (tests):
before_upload, mid_part, after_complete, before_verify, before_delete, after_delete.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from maya_asr.ops.journal import Entry, Journal
from maya_asr.ops.localfs import needs_zip_check, open_for_writing, sha256_file, zip_complete
from maya_asr.ops.retry import describe_error
from maya_asr.ops.store import ObjectStore, UploadInterrupted

log = logging.getLogger(__name__)
CRASH_ENV = "MAYA_WATCHER_CRASHPOINT"
PHASES = (
    "before_upload",
    "mid_part",
    "after_complete",
    "before_verify",
    "before_delete",
    "after_delete",
)
JOURNAL_NAME = ".checkpoint-watcher.json"


def crashpoint(phase: str) -> None:
    """SIGKILL this process when ``$MAYA_WATCHER_CRASHPOINT`` names ``phase`` (fault tests)."""
    if os.environ.get(CRASH_ENV) == phase:
        log.warning("crashpoint %s reached: SIGKILL", phase)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class WatcherConfig:
    """What to watch and how careful to be."""

    directory: Path  # the trainer's checkpoint directory
    run_name: str  # remote folder: <R2_PREFIX>/<run_name>/<file name>
    pattern: str = "*.ckpt"  # which files are checkpoints
    exclude: tuple[str, ...] = ("last*.ckpt",)  # never uploaded (Lightning's resume alias)
    keep_local: int = 2  # newest checkpoints always kept on local disk
    settle_s: float = 60.0  # a file untouched for this long (and closed) may be complete
    poll_s: float = 30.0  # seconds between passes
    marker_suffix: str = ".done"  # "<ckpt>.done" beside a checkpoint marks it complete
    require_marker: bool = False  # only marked checkpoints are complete
    max_verify_failures: int = 3  # failed verifications before a file is left alone (kept)
    journal_path: Path | None = None  # default: <directory>/.checkpoint-watcher.json

    def __post_init__(self):
        object.__setattr__(self, "directory", Path(self.directory))
        if self.max_verify_failures < 1:
            raise ValueError(f"max_verify_failures must be >= 1, got {self.max_verify_failures}")
        if self.keep_local < 0:
            raise ValueError(f"keep_local must be >= 0, got {self.keep_local}")
        if self.settle_s < 0 or self.poll_s <= 0:
            raise ValueError("settle_s must be >= 0 and poll_s > 0")
        if not self.run_name or "/" in self.run_name.strip("/"):
            raise ValueError(f"run_name must be one path segment, got {self.run_name!r}")

    @property
    def journal(self) -> Path:
        return self.journal_path or self.directory / JOURNAL_NAME


def completeness(
    path: Path,
    st: os.stat_result,
    previous: tuple[int, int] | None,
    now: float,
    config: WatcherConfig,
    writer_check: bool = True,
) -> str | None:
    """None when ``path`` is a finished checkpoint, else why not (see :mod:`localfs`)."""
    if Path(f"{path}{config.marker_suffix}").exists():
        return None
    if config.require_marker:
        return f"no {config.marker_suffix} marker yet"
    age = now - st.st_mtime
    if age < config.settle_s:
        return f"modified {age:.0f}s ago (< {config.settle_s:.0f}s settle time)"
    if previous is not None and previous != (st.st_size, st.st_mtime_ns):
        return "changed since the last look"
    if writer_check and open_for_writing(path):
        return "open for writing by a process"
    if needs_zip_check(path) and not zip_complete(path):
        return "not a complete zip archive (torch.save not finished, or the file was cut short)"
    return None


class CheckpointWatcher:
    """Watches one directory; see the module docstring. Not thread-safe; one per directory."""

    def __init__(self, config: WatcherConfig, store: ObjectStore, key_prefix: str = ""):
        self.config = config
        self.store = store
        self.key_prefix = "/".join(p for p in (key_prefix.strip("/"), config.run_name) if p)
        self.journal = Journal(config.journal)
        self._seen: dict[str, tuple[int, int]] = {}
        self._reported: dict[str, str] = {}
        self._stop = threading.Event()

    # ---------------------------------------------------------------- control
    def request_stop(self) -> None:
        """Finish the current part or range, leave a resumable journal, and return from run()."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def key_for(self, name: str) -> str:
        return f"{self.key_prefix}/{name}" if self.key_prefix else name

    # ---------------------------------------------------------------- scanning
    def candidates(self) -> list[Path]:
        cfg = self.config
        out = []
        for path in cfg.directory.glob(cfg.pattern):
            name = path.name
            if (
                name.startswith(".")
                or name.endswith((".tmp", cfg.marker_suffix))
                or any(fnmatch.fnmatch(name, pat) for pat in cfg.exclude)
                or not path.is_file()
            ):
                continue
            out.append(path)
        return out

    def _complete(self, paths: list[Path], drain: bool) -> list[tuple[Path, os.stat_result]]:
        cfg = replace(self.config, settle_s=0.0) if drain else self.config
        now = time.time()
        ready = []
        for path in paths:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            known = self.journal.entries.get(path.name)
            if known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
                reason = None  # hashed as complete earlier and untouched since: skip the scans
            else:
                reason = completeness(path, st, self._seen.get(path.name), now, cfg)
            self._seen[path.name] = (st.st_size, st.st_mtime_ns)
            if reason is None:
                ready.append((path, st))
                self._reported.pop(path.name, None)
            elif self._reported.get(path.name) != reason:
                log.info("waiting for %s: %s", path.name, reason)
                self._reported[path.name] = reason
        ready.sort(key=lambda item: (item[1].st_mtime_ns, item[0].name))
        return ready

    # ---------------------------------------------------------------- passes
    def start(self) -> None:
        """Lock and load the journal; abort uploads under our prefix that it does not know."""
        self.journal.lock()
        self.journal.load()
        keep = {e.upload_id for e in self.journal.entries.values() if e.upload_id}
        try:
            for key, upload_id in self.store.abort_stale_uploads(self.key_prefix + "/", keep):
                log.info("aborted orphaned upload %s of %s", upload_id, key)
        except Exception as exc:  # the store may be down for a while; the next start sweeps
            log.warning("could not sweep orphaned uploads: %s", exc)

    def close(self) -> None:
        self.journal.unlock()

    def run_pass(self, drain: bool = False) -> bool:
        """One pass over the directory; True when it changed anything."""
        progress = False
        paths = self.candidates()
        present = {p.name for p in paths}
        try:
            progress |= self._forget_vanished(present)
        except Exception as exc:  # e.g. the store is down while aborting; next pass retries
            log.error("could not reconcile vanished files: %s", exc)
        ready = self._complete(paths, drain)
        # Newest K complete checkpoints stay local whatever their state.
        newest_first = sorted(ready, key=lambda item: item[1].st_mtime_ns, reverse=True)
        protected = {p.name for p, _ in newest_first[: self.config.keep_local]}
        for path, st in ready:
            if self.stopping:
                break
            try:
                progress |= self._advance(path, st, path.name in protected)
            except UploadInterrupted as exc:
                log.info("stopped: %s (resumable)", exc)
                break
            except Exception as exc:
                log.error("%s: %s; will retry next pass", path.name, exc)
                entry = self.journal.entries.get(path.name)
                if entry is not None:
                    self._try_put(replace(entry, error=str(exc)[:500]))
        return progress

    def _try_put(self, entry: Entry) -> None:
        try:
            self.journal.put(entry)
        except OSError as exc:
            log.error("could not record the error in the journal (%s)", describe_error(exc))

    def _forget_vanished(self, present: set[str]) -> bool:
        changed = False
        for name, entry in list(self.journal.entries.items()):
            if name in present or entry.state in ("deleted", "failed"):
                continue
            if entry.state == "verified":
                # Killed between unlink and the journal write, or removed by hand after verify.
                self.journal.put(replace(entry, state="deleted"))
            else:
                log.warning(
                    "%s vanished before its upload was verified (state %s)", name, entry.state
                )
                if entry.upload_id:
                    self.store.abort_upload(entry.key, entry.upload_id)
                self.journal.put(
                    replace(
                        entry,
                        state="failed",
                        upload_id="",
                        error="local file vanished before verification",
                    )
                )
            changed = True
        return changed

    def _advance(self, path: Path, st: os.stat_result, protected: bool) -> bool:
        name = path.name
        entry = self.journal.entries.get(name)
        if entry is None or (entry.size, entry.mtime_ns) != (st.st_size, st.st_mtime_ns):
            if entry is not None and entry.state != "deleted":
                log.warning("%s changed since it was hashed; treating it as a new version", name)
                if entry.upload_id:
                    self.store.abort_upload(entry.key, entry.upload_id)
            sha = sha256_file(path)
            after = path.stat()
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                log.info("%s changed while hashing; waiting", name)
                return False
            entry = Entry(name, self.key_for(name), st.st_size, st.st_mtime_ns, sha)
            self.journal.put(entry)
            log.info("hashed %s (%d bytes, sha256 %s)", name, entry.size, sha)
        if entry.state in ("failed", "deleted"):
            return False
        before = entry.state
        for _ in range(self.config.max_verify_failures):  # a failed verify re-uploads at once
            if entry.state in ("hashed", "uploading"):
                entry = self._upload(path, entry)
            if entry.state == "uploaded":
                entry = self._verify(entry)
            if entry.state != "hashed":
                break
        if entry.state == "verified" and not protected:
            entry = self._delete(path, entry)
        return entry.state != before

    def _upload(self, path: Path, entry: Entry) -> Entry:
        crashpoint("before_upload")
        log.info(
            "%s %s -> %s", "resuming" if entry.upload_id else "uploading", entry.name, entry.key
        )
        current = entry

        def journal_upload_id(upload_id: str) -> None:
            nonlocal current
            current = replace(current, state="uploading", upload_id=upload_id)
            self.journal.put(current)

        def on_part(done: int, total: int) -> None:
            if done == 1 and total > 1:
                crashpoint("mid_part")

        t0 = time.monotonic()
        result = self.store.upload_file(
            path,
            entry.key,
            entry.sha256,
            upload_id=entry.upload_id or None,
            on_upload_id=journal_upload_id,
            on_part=on_part,
            should_stop=self._stop.is_set,
        )
        crashpoint("after_complete")
        seconds = max(time.monotonic() - t0, 1e-9)
        log.info(
            "uploaded %s (%d parts sent, %.1f MB/s)",
            entry.name,
            result.parts_sent,
            entry.size / seconds / 1e6 if result.parts_sent else 0.0,
        )
        current = replace(current, state="uploaded", upload_id="", etag=result.etag, error="")
        self.journal.put(current)
        return current

    def _verify(self, entry: Entry) -> Entry:
        crashpoint("before_verify")
        result = self.store.verify(entry.key, entry.size, entry.sha256, self._stop.is_set)
        if result.ok:
            log.info("verified %s (size, metadata sha256, read-back sha256)", entry.name)
            entry = replace(entry, state="verified", error="")
        else:
            failures = entry.verify_failures + 1
            why = "; ".join(result.reasons)
            gave_up = failures >= self.config.max_verify_failures
            log.error(
                "verification of %s failed (%d/%d): %s%s",
                entry.name,
                failures,
                self.config.max_verify_failures,
                why,
                "; giving up, local file kept" if gave_up else "; uploading again",
            )
            entry = replace(
                entry,
                state="failed" if gave_up else "hashed",
                upload_id="",
                verify_failures=failures,
                error=why[:500],
            )
        self.journal.put(entry)
        return entry

    def _delete(self, path: Path, entry: Entry) -> Entry:
        crashpoint("before_delete")
        st = path.stat()
        if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
            log.warning("%s changed after verification; not deleting", entry.name)
            return entry
        if sha256_file(path) != entry.sha256:
            log.error("%s no longer matches its verified sha256; not deleting", entry.name)
            return entry
        path.unlink()
        Path(f"{path}{self.config.marker_suffix}").unlink(missing_ok=True)
        crashpoint("after_delete")
        log.info("deleted local %s (verified copy at %s)", entry.name, entry.key)
        entry = replace(entry, state="deleted")
        self.journal.put(entry)
        return entry

    # ---------------------------------------------------------------- loops
    def run(self, once: bool = False, drain: bool = False, max_passes: int = 1000) -> dict:
        """Pass until stopped (``once``: a single pass; ``drain``: until nothing is left to do).

        Returns the count of journal entries per state.
        """
        for _ in range(max_passes if (once or drain) else 10**12):
            try:
                progress = self.run_pass(drain=drain)
            except Exception:
                # A watcher that dies leaves checkpoints to fill the disk: log and go on.
                log.exception("pass failed; retrying in %.0fs", self.config.poll_s)
                progress = False
            if once or self.stopping or (drain and not progress):
                break
            if not drain:
                self._stop.wait(self.config.poll_s)
        return self.summary()

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.journal.entries.values():
            counts[entry.state] = counts.get(entry.state, 0) + 1
        return counts

    def pending(self) -> list[str]:
        """Local checkpoints with no verified remote copy yet (what a drain leaves behind)."""
        present = {p.name for p in self.candidates()}
        return sorted(
            n
            for n in present
            if self.journal.entries.get(n) is None
            or self.journal.entries[n].state not in ("verified", "deleted")
        )

    def format_summary(self) -> str:
        rows = sorted(self.journal.entries.values(), key=lambda e: e.name)
        width = max([len(e.name) for e in rows] + [4])
        lines = [f"{'file':<{width}}  {'state':<9}  {'bytes':>14}  key"]
        lines += [f"{e.name:<{width}}  {e.state:<9}  {e.size:>14}  {e.key}" for e in rows]
        return "\n".join(lines)

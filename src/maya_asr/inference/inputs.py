"""What to transcribe: manifest rows, audio files or a folder, and how their audio is loaded.

Two kinds of manifest row are read (JSON lines; extra fields pass through to the output):

- a NeMo manifest row: ``{"audio_filepath": ..., "text": ..., "duration": ...}``; a relative
  path is relative to the manifest's folder, as in NeMo; a row with ``"offset"`` (seconds) is
  the segment ``[offset, offset + duration)`` of the file, as in NeMo;
- a tar-offset row of our data pipeline: ``{"tar_path": ..., "tar_offset_data": ...,
  "tar_nbytes": ...}``: the audio is that byte range of the shard, read with one ``os.pread``
  (no extraction).

The reference text is ``text`` (NeMo) or ``transcript`` (production index); the language is
``lang`` or ``language``. Every row is checked before any model work starts, so a typo in row
90 000 fails in a second with its line number, not after an hour of decoding.

Audio of any sample rate and channel count is mixed down to mono (channel mean) and resampled
with soxr to the model's rate.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TEXT_FIELDS = ("text", "transcript")
LANGUAGE_FIELDS = ("lang", "language")
TAR_FIELDS = ("tar_path", "tar_offset_data", "tar_nbytes")
# What soundfile (libsndfile >= 1.1) decodes; used to pick files out of a --dir folder.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3")
MAX_LISTED_PROBLEMS = 10  # problems named one by one in an InputError; the rest are counted


class InputError(ValueError):
    """An input (manifest row, file) is unusable; the message names each one and the fix."""


@dataclass(frozen=True)
class AudioInput:
    """One utterance to transcribe."""

    path: str  # the audio file, or the tar shard that holds it
    where: str  # for messages: "manifest.jsonl:12" or the file path
    offset: int | None = None  # tar rows: first byte of the member data in ``path``
    nbytes: int | None = None  # tar rows: size of the member data in bytes
    start_s: float = 0.0  # NeMo segment rows: where the segment starts in the file, seconds
    segment_s: float | None = None  # NeMo segment rows: its length in seconds (None: to the end)
    row: dict = field(default_factory=dict)  # the manifest row (or {"audio_filepath": path})

    @property
    def text(self) -> str | None:
        """The reference transcript, when the row has one."""
        return next((self.row[k] for k in TEXT_FIELDS if k in self.row), None)

    @property
    def language(self) -> str | None:
        return next((self.row[k] for k in LANGUAGE_FIELDS if self.row.get(k)), None)


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def row_to_input(row: dict, where: str, base: Path) -> AudioInput:
    """One manifest row -> :class:`AudioInput`; :class:`InputError` says what is wrong."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: a manifest row must be a JSON object, got {type(row).__name__}")
    # Tar-offset fields win: the pipeline's val manifest also carries a NeMo `audio_filepath`
    # of the form "shard.tar#key.flac", which names the member but is not a file to open.
    if all(k in row for k in TAR_FIELDS):
        offset, nbytes = row["tar_offset_data"], row["tar_nbytes"]
        if not (isinstance(offset, int) and isinstance(nbytes, int) and offset >= 0 and nbytes > 0):
            raise InputError(f"{where}: tar_offset_data and tar_nbytes must be integers >= 0 / > 0")
        return AudioInput(_resolve(str(row["tar_path"]), base), where, offset, nbytes, row=row)
    if "audio_filepath" in row:
        path = _resolve(str(row["audio_filepath"]), base)
        if row.get("offset") is None:
            return AudioInput(path, where, row=row)
        start, length = row["offset"], row.get("duration")
        if not (isinstance(start, int | float) and start >= 0):
            raise InputError(f"{where}: offset must be a number of seconds >= 0, got {start!r}")
        if length is not None and not (isinstance(length, int | float) and length > 0):
            raise InputError(f"{where}: duration must be a positive number of seconds")
        return AudioInput(path, where, start_s=float(start), segment_s=length, row=row)
    raise InputError(
        f"{where}: a row needs 'audio_filepath' (NeMo manifest) or "
        f"{', '.join(TAR_FIELDS)} (tar-offset manifest); it has {', '.join(row) or 'no fields'}"
    )


def read_manifest(path: str | os.PathLike) -> list[AudioInput]:
    """All rows of a JSON-lines manifest (blank lines skipped), checked by :func:`check_inputs`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest {path} does not exist")
    inputs = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: not valid JSON ({e.msg}); fix or remove the row") from e
            inputs.append(row_to_input(row, where, path.parent))
    if not inputs:
        raise InputError(f"manifest {path} has no rows")
    check_inputs(inputs)
    return inputs


def files_to_inputs(paths: Sequence[str | os.PathLike]) -> list[AudioInput]:
    """Audio files named on the command line."""
    inputs = [AudioInput(str(p), str(p), row={"audio_filepath": str(p)}) for p in paths]
    check_inputs(inputs)
    return inputs


def folder_to_inputs(folder: str | os.PathLike) -> list[AudioInput]:
    """Every audio file under ``folder`` (recursively), in sorted path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {folder}")
    return files_to_inputs(files)


def shard_rows(root: str | os.PathLike, per_language: int | None = None) -> list[dict]:
    """Tar-offset manifest rows for the utterances of raw shards ``<root>/<lang>/shard-*.tar``.

    A quick way to evaluate or benchmark on raw shards (the demo corpus) without building a
    manifest; ``scripts/build_manifest.py`` does the full, validated job for training data.
    ``per_language`` keeps the first N utterances of each language.
    """
    import tarfile

    from maya_asr.data import raw_format

    rows = []
    for lang_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        lang_rows: list[dict] = []
        for shard in sorted(lang_dir.glob(raw_format.SHARD_GLOB)):
            audio: dict[str, tarfile.TarInfo] = {}
            meta: dict[str, dict] = {}
            with tarfile.open(shard) as tar:
                for member in tar:
                    parts = raw_format.split_member_name(member.name)
                    if parts is None:
                        continue
                    key, ext = parts
                    if ext in raw_format.AUDIO_EXTENSIONS:
                        audio[key] = member
                    elif ext == raw_format.METADATA_EXTENSION:
                        meta[key] = json.loads(tar.extractfile(member).read())
            for key, member in audio.items():
                lang_rows.append(
                    {
                        "tar_path": str(shard.resolve()),
                        "tar_offset_data": member.offset_data,
                        "tar_nbytes": member.size,
                        "key": key,
                        **meta.get(key, {}),
                    }
                )
        rows.extend(lang_rows[:per_language])
    return rows


def shard_inputs(root: str | os.PathLike, per_language: int | None = None) -> list[AudioInput]:
    """:func:`shard_rows` as checked inputs, each named ``<shard>:<key>`` in messages."""
    rows = shard_rows(root, per_language)
    inputs = [row_to_input(r, f"{r['tar_path']}:{r['key']}", Path(root)) for r in rows]
    check_inputs(inputs)
    return inputs


def check_inputs(inputs: Iterable[AudioInput]) -> None:
    """Raise :class:`InputError` naming every missing file or out-of-range tar member."""
    problems = []
    sizes: dict[str, int | None] = {}
    for item in inputs:
        if item.path not in sizes:
            sizes[item.path] = os.path.getsize(item.path) if os.path.isfile(item.path) else None
        size = sizes[item.path]
        if size is None:
            problems.append(f"{item.where}: audio file {item.path} does not exist")
        elif item.offset is not None and item.offset + item.nbytes > size:
            problems.append(
                f"{item.where}: bytes [{item.offset}, {item.offset + item.nbytes}) lie past the "
                f"end of {item.path} ({size} bytes); the shard changed since the manifest was built"
            )
    if problems:
        shown = "\n  ".join(problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise InputError(
            f"{len(problems)} input(s) cannot be read:\n  {shown}{tail}\n"
            "Fix the paths (relative paths are relative to the manifest's folder) or drop the rows."
        )


@functools.cache
def _tar_reader():
    from lf_asr.data.tar_offset_reader import TarOffsetReader

    return TarOffsetReader()


def read_audio(item: AudioInput, sample_rate: int) -> np.ndarray:
    """The utterance as mono float32 samples at ``sample_rate``: (num_samples,)."""
    import soundfile as sf
    import soxr

    if item.offset is None:
        source: str | io.BytesIO = item.path
    else:
        # The training loader's reader: one pread, the tar header in front checked, typed errors.
        from lf_asr.data.tar_offset_reader import TarReadError

        try:
            data = _tar_reader().read_bytes(
                item.path, item.offset, item.nbytes, item.row.get("key", "")
            )
        except TarReadError as e:
            raise InputError(f"{item.where}: {e}") from e
        source = io.BytesIO(data)
    try:
        with sf.SoundFile(source) as f:
            rate = f.samplerate
            if item.start_s:
                f.seek(min(round(item.start_s * rate), f.frames))
            frames = -1 if item.segment_s is None else round(item.segment_s * rate)
            audio = f.read(frames, dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise InputError(f"{item.where}: cannot decode audio from {item.path}: {e}") from e
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)

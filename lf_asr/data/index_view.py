"""The loader's view of the production index: memory-mapped fixed-width rows and one text blob,
so a lookup costs O(batch) at any index size.

Every DataLoader worker of every rank needs, per micro-batch, a handful of rows of a 50M-row
index. Reading the parquet per worker would hold N decoded copies; a ``pyarrow.Table.take`` on
the whole index concatenates every chunk of each string column first (183 MB and 30 ms per
16-row lookup at 2M rows; ``offset overflow`` once a column passes 2 GiB). So:

- **Build once per index version** (one builder per machine, under a file lock): stream the
  parquet's row groups in batches of ``batch_rows`` rows (memory: one batch, whatever the row
  count), cast each to the index contract (dictionaries decoded, widths fixed) and append:
  - to ``<view>.rows.npy`` one fixed-width record per row (``ROW_DTYPE``, 40 bytes: data offset
    and size in the shard, shard id, language id, where the row's text starts in the blob and
    its lengths); a plain ``.npy`` file, so ``np.load(path, mmap_mode="r")`` reads it;
  - to ``<view>.text.bin`` the row's transcript then its key, UTF-8, back to back (int64
    offsets: no column can overflow);
  - to ``<view>.tables.json`` the shard table (~10K paths instead of 50M copies; editing it, or
    ``tar_root_remap``, moves every shard) and the language table.
- **Open** with ``np.load(mmap_mode="r")`` and ``mmap``: zero-copy views of the page cache,
  shared by every process of the machine.
- **Look up** by one numpy gather of the records and one slice of the blob per row. A row's
  fields sit in one 40-byte record and its text in one run of bytes, so a lookup touches a few
  cache lines per row and no per-chunk object, whatever the row count. This is the layout of
  Megatron-LM's and fairseq's memory-mapped indexed datasets (fixed-width ``.idx`` + ``.bin``).
  Measured (scripts/bench_row_lookup.py, one run, 16-row lookups of already-seen rows): the
  previous layout, an Arrow IPC file of 65,536-row record batches read as scalars (six arrays
  of the row's own batch per row, 763 batches at 50M rows), took 0.11 ms at 0.2M rows and
  0.24 ms at 50M (2.1x); this one 0.116 ms and 0.088 ms.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lf_asr.data.schema import cast_to_index_schema, check_index_schema

# Columns of the index the dataset reads; tar_path becomes a shard id in the view.
DATASET_COLUMNS = ("tar_path", "tar_offset_data", "tar_nbytes", "transcript", "language", "key")
# One row of the view, 40 bytes with no padding (fields ordered widest first).
ROW_DTYPE = np.dtype(
    [
        ("tar_offset_data", "<i8"),
        ("tar_nbytes", "<i8"),
        ("text_start", "<i8"),  # byte offset of the transcript in <view>.text.bin; the key follows
        ("shard_id", "<i4"),
        ("language_id", "<i4"),
        ("transcript_len", "<i4"),  # UTF-8 bytes
        ("key_len", "<i4"),
    ]
)
VIEW_FORMAT = "rows-npy-v2"  # part of the view's name: a new layout never reads an old file
BATCH_ROWS = 1 << 16

log = logging.getLogger(__name__)


class IndexLookupError(LookupError):
    """A row of the index cannot be looked up (out of range, or the view is damaged)."""


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One utterance of the index, as the dataset reads it."""

    row: int  # position in the index
    tar_path: str  # shard path, after ``tar_root_remap``
    tar_offset_data: int  # first byte of the member's data
    tar_nbytes: int  # member data size
    transcript: str
    language: str
    key: str


class ViewFiles(NamedTuple):
    """The files of one index version's view (``rows`` is written last: it marks a whole view)."""

    rows: Path
    text: Path
    tables: Path


def view_paths(index_path: Path, cache_dir: str | Path | None = None) -> ViewFiles:
    """The view's files for ``index_path``; the names change with the index file and format."""
    index_path = Path(index_path)
    st = index_path.stat()
    ident = f"{index_path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{VIEW_FORMAT}"
    tag = hashlib.sha1(ident.encode()).hexdigest()[:12]
    folder = Path(cache_dir) if cache_dir else index_path.parent
    stem = f"{index_path.stem}.loader-{tag}"
    return ViewFiles(
        folder / f"{stem}.rows.npy", folder / f"{stem}.text.bin", folder / f"{stem}.tables.json"
    )


def _ids(column: pa.Array, table: dict[str, int]) -> np.ndarray:
    """int32 ids of ``column``'s strings in ``table`` (new strings are appended to it).

    A batch names few distinct shards (a shard's rows are adjacent) and languages, so
    dictionary-encode it and map each distinct string once."""
    encoded = column.dictionary_encode()
    ids_of = np.array(
        [table.setdefault(s, len(table)) for s in encoded.dictionary.to_pylist()], dtype=np.int32
    )
    return ids_of[encoded.indices.to_numpy(zero_copy_only=False)]


def _utf8_lengths(column: pa.Array, name: str, path: Path) -> np.ndarray:
    lengths = pc.binary_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(lengths) and lengths.max() >= 2**31:
        raise ValueError(f"{path}: a {name} of {lengths.max():,} bytes does not fit the view")
    return lengths


def _records(
    batch: pa.RecordBatch,
    index_path: Path,
    text_base: int,
    shard_ids: dict[str, int],
    language_ids: dict[str, int],
) -> tuple[np.ndarray, memoryview]:
    """One parquet batch as view records and the text blob bytes that follow ``text_base``."""
    table = cast_to_index_schema(
        pa.Table.from_batches([batch]), str(index_path), DATASET_COLUMNS
    ).combine_chunks()
    col = {name: table.column(name).chunk(0) for name in DATASET_COLUMNS}
    transcript = col["transcript"].cast(pa.large_string())
    key = col["key"].cast(pa.large_string())
    # transcript + key of each row as one string: its offsets place the row in the blob
    joined = pc.binary_join_element_wise(transcript, key, pa.scalar("", pa.large_string()))
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[
        joined.offset : joined.offset + len(joined) + 1
    ]
    rec = np.empty(len(joined), dtype=ROW_DTYPE)
    rec["tar_offset_data"] = col["tar_offset_data"].to_numpy()
    rec["tar_nbytes"] = col["tar_nbytes"].to_numpy()
    rec["text_start"] = text_base + offsets[:-1] - offsets[0]
    rec["shard_id"] = _ids(col["tar_path"], shard_ids)
    rec["language_id"] = _ids(col["language"], language_ids)
    rec["transcript_len"] = _utf8_lengths(transcript, "transcript", index_path)
    rec["key_len"] = _utf8_lengths(key, "key", index_path)
    data = joined.buffers()[2]
    blob = memoryview(data)[offsets[0] : offsets[-1]] if data is not None else memoryview(b"")
    return rec, blob


def build_index_view(index_path: Path, files: ViewFiles, batch_rows: int = BATCH_ROWS) -> dict:
    """Stream ``index_path`` into the view's three files (each written atomically, rows last).

    Memory: one batch of ``batch_rows`` rows plus the shard table. Returns row/shard counts.
    """
    import pyarrow.parquet as pq

    index_path = Path(index_path)
    # pre_buffer=False: with pyarrow's default read-ahead the reader kept buffers of every row
    # group it had passed (peak RSS 5.7 GB building a 50M-row view; 0.46 GB without at 5M)
    pf = pq.ParquetFile(index_path, pre_buffer=False)
    check_index_schema(pf.schema_arrow, str(index_path), DATASET_COLUMNS)
    total = pf.metadata.num_rows
    shard_ids: dict[str, int] = {}
    language_ids: dict[str, int] = {}
    rows = text_bytes = 0
    partial = [p.with_name(f"{p.name}.{os.getpid()}.partial") for p in files]
    try:
        with open(partial[0], "wb") as rows_out, open(partial[1], "wb") as text_out:
            # The .npy header needs the row count up front: the parquet footer has it, and the
            # records are then appended with plain writes (no mapped output pages in our RSS).
            header = {"descr": np.lib.format.dtype_to_descr(ROW_DTYPE), "fortran_order": False,
                      "shape": (total,)}  # fmt: skip
            np.lib.format.write_array_header_2_0(rows_out, header)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=list(DATASET_COLUMNS)):
                if batch.num_rows == 0:
                    continue
                rec, blob = _records(batch, index_path, text_bytes, shard_ids, language_ids)
                text_out.write(blob)
                rows_out.write(rec.tobytes())
                text_bytes += len(blob)
                rows += len(rec)
        if rows != total:
            raise ValueError(
                f"{index_path}: footer says {total} rows, {rows} were read; rebuild it"
            )
        tables = {"format": VIEW_FORMAT, "rows": rows, "shards": list(shard_ids),
                  "languages": list(language_ids)}  # fmt: skip
        partial[2].write_text(json.dumps(tables, ensure_ascii=False))
        for done, final in ((partial[1], files.text), (partial[2], files.tables)):
            os.replace(done, final)
        os.replace(partial[0], files.rows)  # last: a rows file on disk has its text and tables
    except BaseException:  # a bad column, a full disk, Ctrl-C: leave no 17 GB partial behind
        for p in partial:
            p.unlink(missing_ok=True)
        raise
    return {"rows": rows, "shards": len(shard_ids), "text_bytes": text_bytes}


def remap_root(path: str, remap: Sequence[tuple[str, str]]) -> str:
    """``path`` with the longest matching old root replaced by its new root (whole components)."""
    best = None
    for old, new in remap:
        old = old.rstrip("/")
        inside = path == old or path.startswith(old + "/")
        if inside and (best is None or len(old) > len(best[0])):
            best = (old, new.rstrip("/"))
    return path if best is None else best[1] + path[len(best[0]) :]


class IndexView:
    """The memory-mapped view: ``len(view)`` rows, ``view.rows([i, j, ...]) -> [IndexRow, ...]``."""

    def __init__(self, files: ViewFiles, tar_root_remap: Sequence[tuple[str, str]] = ()) -> None:
        self.files = ViewFiles(*(Path(p) for p in files))
        try:
            tables = self._open()
        except (OSError, ValueError, KeyError) as e:  # cut short, missing, unreadable, old
            raise IndexLookupError(
                f"the index view {self.files.rows} cannot be opened ({type(e).__name__}: {e}): "
                f"delete {self.files.rows.name[: -len('.rows.npy')]}.* in "
                f"{self.files.rows.parent} and it is rebuilt from the index"
            ) from e
        shards = tables["shards"]
        self.shards = [remap_root(p, tar_root_remap) for p in shards] if tar_root_remap else shards
        self.languages = tables["languages"]

    def _open(self) -> dict:
        """Map the records and the text blob; check they agree with each other and the tables."""
        # np.asarray: a plain ndarray over the map (np.memmap's indexing adds Python overhead)
        self._records = np.asarray(np.load(self.files.rows, mmap_mode="r"))
        if self._records.dtype != ROW_DTYPE:
            raise ValueError(f"records are {self._records.dtype}, expected {ROW_DTYPE}")
        with open(self.files.text, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._text = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        tables = json.loads(self.files.tables.read_text())
        n = len(self._records)
        last = self._records[-1] if n else None
        end = (
            0
            if last is None
            else int(last["text_start"] + last["transcript_len"] + last["key_len"])
        )
        if tables.get("format") != VIEW_FORMAT or tables.get("rows") != n or end != size:
            raise ValueError(
                f"damaged: {n} records, {tables.get('rows')} in {self.files.tables.name} "
                f"(format {tables.get('format')}); text ends at {end} bytes, "
                f"{self.files.text.name} has {size}"
            )
        return tables

    def __len__(self) -> int:
        return len(self._records)

    def rows(self, indices: Sequence[int]) -> list[IndexRow]:
        """The rows at ``indices`` (in that order); ``IndexLookupError`` if one is out of range."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][0]
            raise IndexLookupError(f"row {int(bad)} is outside the index (0..{len(self) - 1})")
        out = []
        text, shards, languages = self._text, self.shards, self.languages
        for row, (off, nbytes, start, sid, lid, tlen, klen) in zip(
            idx.tolist(), self._records[idx].tolist(), strict=True
        ):
            raw = text[start : start + tlen + klen]
            out.append(
                IndexRow(row, shards[sid], off, nbytes, raw[:tlen].decode(), languages[lid],
                         raw[tlen:].decode())
            )  # fmt: skip
        return out


def _warn_stale_views(index_path: Path, files: ViewFiles) -> None:
    """Name the views of earlier versions of this index (or of an older layout) left beside the
    new one: tens of GB at 50M rows. Not deleted here: with a shared ``cache_dir``, another index
    of the same name may still use them."""
    stale = [
        p
        for p in files.rows.parent.glob(f"{index_path.stem}.loader-*")
        if p not in files and p.suffix in (".arrow", ".json", ".npy", ".bin")
    ]
    if stale:
        gb = sum(p.stat().st_size for p in stale) / 1e9
        log.warning(
            "%d file(s) of older views of %s (%.1f GB) lie beside the new view, e.g. %s: delete "
            "them once no job uses the index version they were built for",
            len(stale), index_path.name, gb, stale[0],
        )  # fmt: skip


def open_index_view(
    index_path: str | Path,
    cache_dir: str | Path | None = None,
    tar_root_remap: Sequence[tuple[str, str]] | Mapping[str, str] = (),
    batch_rows: int = BATCH_ROWS,
) -> IndexView:
    """The view of ``index_path``, building it first if this index version has none.

    One builder per machine: the ranks of a node wait on a lock instead of all writing, and the
    atomic renames mean a racing reader only ever sees a complete view.
    """
    index_path = Path(index_path)
    files = view_paths(index_path, cache_dir)
    if not files.rows.exists():
        files.rows.parent.mkdir(parents=True, exist_ok=True)
        with open(files.rows.with_name(files.rows.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not files.rows.exists():
                build_index_view(index_path, files, batch_rows)
                _warn_stale_views(index_path, files)
    remap = tuple(tar_root_remap.items()) if isinstance(tar_root_remap, Mapping) else tar_root_remap
    return IndexView(files, remap)

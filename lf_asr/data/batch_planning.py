"""Pure, vectorised planning of one epoch of micro-batches: the core of ProductionBatchSampler.

Every function here takes numpy arrays (one entry per index row) and a seeded ``Generator`` and
returns numpy arrays; nothing loops over rows in Python, so an epoch of 50M rows plans in tens of
seconds (``scripts/bench_sampler.py``). The stages, in order:

1. ``assign_buckets``       duration -> bucket id, -1 outside the edges (counted);
   ``fits_alone``           rows that meet every cap on their own (the others are counted);
2. ``language_probs``       the temperature target per language (``language_streams`` then
   draws each language's rows for the epoch);
3. ``auto_bucket_caps``     per-bucket sample caps derived from the other caps;
4. ``pack_batches``         rows -> micro-batches under the caps, from duration-sorted pools;
5. ``batch_costs``          a compute-cost estimate per micro-batch;
6. ``assign_steps``         micro-batches -> (optimizer step, rank, accumulation slot), balanced.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

FRAME_SHIFT_S = 0.01  # mel frame shift of the FastConformer preprocessor (10 ms)


@dataclass(frozen=True)
class JointCap:
    """Cap on the TDT joint tensor (B, T_enc, U + 1, V + 1 + num_durations) of one micro-batch.

    That tensor, not the encoder, is what runs a transducer out of memory: at 16 s, 100 tokens
    and a 32K vocabulary it holds 200 x 101 x 32774 = 662M elements per utterance. Pass the
    model's values (``cfg.preprocessor.window_stride``, ``cfg.encoder.subsampling_factor``,
    tokenizer vocab size, ``len(cfg.model_defaults.tdt_durations)``, ``joint.fused_batch_size``).

    What is counted: ``B + min(B, fused_batch_size)`` rows of T x (U+1) x (V+1+D). NeMo's fused
    joint (``RNNTJoint.forward`` with ``fuse_loss_wer``) materialises the joint of
    ``fused_batch_size`` utterances at a time, but the numba TDT loss computes its gradient in the
    forward pass (``TDTFunction.forward``: ``label_grads = torch.zeros_like(label_acts)``, kept by
    ``ctx.save_for_backward``) and keeps it until backward, so a gradient of the *whole* batch's
    joint stays alive next to the live sub-batch. Unfused (``fused_batch_size`` None) the full
    joint and its gradient are both alive: 2B rows.
    """

    max_elements: int  # most joint elements a micro-batch may hold: rows x T x (U+1) x (V+1+D)
    subsampling_factor: int = 8  # encoder frames = ceil(mel frames / subsampling_factor)
    vocab_size: int = 32000  # BPE vocabulary, without the blank
    num_durations: int = 5  # TDT duration outputs (0 for a plain RNNT joint)
    frame_shift_s: float = FRAME_SHIFT_S  # preprocessor window stride in seconds
    fused_batch_size: int | None = None  # model.joint.fused_batch_size (None: unfused joint)

    def __post_init__(self) -> None:
        if self.max_elements <= 0:
            raise ValueError(f"JointCap.max_elements must be positive, got {self.max_elements}")
        if self.subsampling_factor < 1 or self.vocab_size < 1 or self.num_durations < 0:
            raise ValueError(
                "JointCap needs subsampling_factor >= 1, vocab_size >= 1, num_durations >= 0"
            )
        if self.frame_shift_s <= 0:
            raise ValueError(f"frame_shift_s must be positive, got {self.frame_shift_s}")
        if self.fused_batch_size is not None and self.fused_batch_size < 1:
            raise ValueError(f"fused_batch_size must be >= 1, got {self.fused_batch_size}")

    def encoder_frames(self, duration_s: np.ndarray) -> np.ndarray:
        """Encoder output length for clips of ``duration_s`` seconds (float64 array)."""
        mel = np.floor(np.asarray(duration_s, np.float64) / self.frame_shift_s) + 1
        return np.ceil(mel / self.subsampling_factor)

    def rows(self, batch_size) -> np.ndarray:
        """Joint rows alive at once for a batch of ``batch_size``: B gradients + the live part."""
        b = np.asarray(batch_size, np.float64)
        return b + (b if self.fused_batch_size is None else np.minimum(b, self.fused_batch_size))

    def row_elements(self, max_duration_s, max_tokens) -> np.ndarray:
        """Elements of one utterance's joint, T x (U+1) x (V+1+D), at the batch's padded size."""
        width = self.vocab_size + 1 + self.num_durations
        return (
            self.encoder_frames(max_duration_s) * (np.asarray(max_tokens, np.float64) + 1) * width
        )

    def elements(self, batch_size, max_duration_s, max_tokens) -> np.ndarray:
        """Joint elements counted against ``max_elements`` for batches of ``batch_size`` with the
        given longest clip / transcript: ``rows(B) x T x (U+1) x (V+1+D)``."""
        return self.rows(batch_size) * self.row_elements(max_duration_s, max_tokens)

    def frames_tokens_limit(self, batch_size: int) -> int:
        """Largest integer ``T x (U+1)`` a batch of ``batch_size`` may reach: ``elements(B, d, u)
        <= max_elements`` holds exactly when ``encoder_frames(d) x (u+1)`` is at most this (all
        factors are integers), so the packer checks the joint cap with one integer product."""
        width = self.vocab_size + 1 + self.num_durations
        per = int(self.rows(batch_size)) * width
        return math.floor(self.max_elements) // per

    def max_batch(self, max_duration_s, max_tokens) -> np.ndarray:
        """Largest B (int64, 0 when none) with ``elements(B, ...) <= max_elements``."""
        r = np.floor(self.max_elements / self.row_elements(max_duration_s, max_tokens))
        if self.fused_batch_size is None:
            return (r // 2).astype(np.int64)
        f = self.fused_batch_size
        return np.where(r <= 2 * f, r // 2, r - f).astype(np.int64)


@dataclass(frozen=True)
class CostModel:
    """Relative compute cost of a micro-batch, used to balance ranks (units: ~FLOPs / 1e9).

    Defaults are rough per-element FLOP counts of the 1.1B FastConformer TDT: the encoder's linear
    layers scale with padded encoder frames (B x T), self-attention with B x T^2, and the joint
    with its tensor size; a micro-batch also has a fixed cost (kernel launches, ~1000 frames'
    worth on an H200), which is what dominates the cheapest batches. Only ratios matter.
    """

    batch_overhead: float = 1000.0  # fixed per micro-batch: ~4K kernel launches fwd+bwd, ~20 ms
    frame_cost: float = 1.0  # per padded encoder frame (42 layers x ~24 d_model^2 FLOPs)
    attention_cost: float = 2e-4  # per (frame, frame) pair per utterance (42 x 4 d_model FLOPs)
    joint_cost: float = 1.3e-6  # per joint element (the 640 -> V projection, ~2 x 640 FLOPs)
    subsampling_factor: int = 8
    vocab_size: int = 32000
    num_durations: int = 5

    def __post_init__(self) -> None:
        if min(self.batch_overhead, self.frame_cost, self.attention_cost, self.joint_cost) < 0:
            raise ValueError("CostModel coefficients must be non-negative")


def assign_buckets(duration_s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket id (int8) of each clip: edges[b] <= d < edges[b+1], the last bucket closed
    (a clip of exactly the last edge is kept); -1 outside the edges."""
    if len(edges) > 100:
        raise ValueError(f"at most 99 buckets are supported, got {len(edges) - 1}")
    b = np.full(len(duration_s), -1, np.int8)  # one byte per row: no int64 searchsorted output
    for e in edges:
        b += duration_s >= e
    b[b == len(edges) - 1] = -1
    b[duration_s == np.float32(edges[-1])] = len(edges) - 2
    return b


def fits_alone(
    duration_s: np.ndarray,
    num_tokens: np.ndarray,
    max_batch_dur: float,
    max_tokens_in_batch: int,
    joint: JointCap | None,
    chunk: int = 1 << 20,
) -> np.ndarray:
    """Rows that meet every cap in a batch of one (bool). The others can never be batched; the
    sampler counts them once instead of drawing them every epoch. Chunked: the joint check's
    float64 temporaries of a 50M-row index would be 0.4 GB each and cost seconds in memory
    traffic."""
    ok = (duration_s <= max_batch_dur * (1 + 1e-6)) & (num_tokens <= max_tokens_in_batch)
    if joint is not None:
        limit = joint.frames_tokens_limit(1)
        for c in range(0, len(ok), chunk):
            f = joint.encoder_frames(duration_s[c : c + chunk])
            ok[c : c + chunk] &= f * (num_tokens[c : c + chunk] + 1.0) <= limit
    return ok


def language_probs(hours: np.ndarray, temperature: float) -> np.ndarray:
    """Target share p_l of each language: p_l proportional to n_l ** T over languages with data.

    ``T = 1`` keeps the natural shares, ``T = 0`` makes them uniform, in between flattens them
    (the convention of XLS-R / mSLAM "alpha"; fairseq's "temperature" is 1/T of this one).
    """
    hours = np.asarray(hours, np.float64)
    w = np.where(hours > 0, np.power(np.maximum(hours, 1e-300), temperature), 0.0)
    total = w.sum()
    if total <= 0:
        raise ValueError("no language has any usable audio: check durations and bucket edges")
    return w / total


def _group_sort(bucket, duration_s, pool_size, rng) -> tuple[np.ndarray, np.ndarray]:
    """Order rows by (bucket, random pool, duration): ascending durations inside pools of about
    ``pool_size`` random rows of one bucket. Returns (order, group id in that order)."""
    n = len(bucket)
    nb = int(bucket.max()) + 1 if n else 0
    counts = np.bincount(bucket, minlength=nb)
    pools = np.maximum(1, -(-counts // pool_size))  # ceil
    if pools.max(initial=1) >= 2**20:
        raise ValueError("pool_size too small for this many rows: raise it")
    # Uniform pool per row (floor of a uniform [0, 1) x pool count): bounded integers with a
    # per-row bound cost numpy ~2x more.
    pool = rng.random(n)
    pool *= pools[bucket]
    pool = np.minimum(pool, pools[bucket] - 1).astype(np.int32)
    if pools.sum() <= 2**16 and n < 2**32:
        # One SIMD sort of uint64 keys: global pool (16 bits) | duration quantised to 1/65535
        # of the longest clip (16) | position (32). The position makes ties keep row order, so
        # this equals a stable sort by (pool, duration) and reads the order off the low bits;
        # two stable 16-bit radix passes with their gathers took ~5x longer at 50M rows.
        first_pool = np.cumsum(pools) - pools
        key = (first_pool[bucket] + pool).astype(np.uint64)
        key <<= np.uint64(16)
        scale = np.float32(65535 / max(float(duration_s.max(initial=0)), 1e-9))
        key |= (duration_s * scale).astype(np.uint16)
        key <<= np.uint64(32)
        key |= np.arange(n, dtype=np.uint64)
        key.sort()
        # Low 32 bits (the position) and top 16 (the pool) read as strided views: no 64-bit
        # temporaries the size of the chapter.
        little = sys.byteorder == "little"
        low = key.view(np.uint32)[0::2] if little else key & np.uint64(0xFFFFFFFF)
        order = low.astype(np.int32 if n < 2**31 else np.int64)
        gpool = (key.view(np.uint16)[3::4] if little else key >> np.uint64(48)).astype(np.int32)
        del key, low
        # global pool -> (bucket << 20 | pool): a lookup in a table of <= 2**16 entries
        owner = np.repeat(np.arange(nb, dtype=np.int32), pools)
        table = (owner << 20) | (np.arange(len(owner), dtype=np.int32) - first_pool[owner])
        return order, table[gpool].astype(np.int32)
    # key = bucket (8 bits) | pool (20) | duration in 0.1 ms (24) | random tie-break (11)
    key = bucket.astype(np.int64)
    key <<= 20
    key |= pool
    key <<= 24
    key |= np.minimum(np.round(duration_s * 1e4), 2**24 - 1).astype(np.int64)
    key <<= 11
    key |= rng.integers(0, 2**11, n, dtype=np.int64)
    order = np.argsort(key)
    del key
    order = _index_dtype(order, n)
    group = bucket[order].astype(np.int32)
    group <<= 20
    group |= pool[order]
    return order, group


def _index_dtype(a: np.ndarray, n: int) -> np.ndarray:
    """Positions below ``n`` as int32 when they fit: half the memory of numpy's int64."""
    return a.astype(np.int32) if n < 2**31 else a


def _batch_sizes(d, t, g, caps, max_batch_dur, max_tokens, joint, chunk=1 << 20) -> np.ndarray:
    """For every position i of the sorted rows: the longest run i..i+k-1 inside i's group that
    meets every cap (0 when row i alone breaks one). Vectorised over positions, looping only over
    k <= max(caps) with running aggregates; processed in chunks to bound memory. Positions whose
    run has stopped growing are dropped from the work arrays once they are the majority: long
    clips stop after a few rows while short ones run to the largest cap (57 at production size),
    and carrying the stopped ones took half the plan time at 50M rows. The joint cap is checked
    as an integer product, encoder frames x (longest transcript + 1) against
    ``JointCap.frames_tokens_limit(k)``, with frames computed once per row (the float64
    ``JointCap.elements`` at every k was the packer's largest cost)."""
    n = len(d)
    kmax = int(caps.max()) if n else 0
    out = np.zeros(n, np.int32)
    limits = [0] + [joint.frames_tokens_limit(k) for k in range(1, kmax + 1)] if joint else None
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        m, h = c1 - c0, min(n, c1 + kmax)  # this chunk and the rows its batches may reach
        pad = c1 + kmax - h  # rows past the end: padded so that they never fit
        dc = np.concatenate([d[c0:h], np.full(pad, np.inf, np.float32)])
        tc = np.concatenate([t[c0:h], np.full(pad, 2**30, np.int32)])
        gc = np.concatenate([g[c0:h], np.full(pad, -1, g.dtype)])
        if joint is not None:  # padded rows: a frame count that never fits
            fc = np.minimum(joint.encoder_frames(dc), 2**30).astype(np.int32)
            run_f = np.zeros(m, np.int64)
        pos = None  # positions (in the chunk) still growing; None: all of them, as slices
        gi = gc[:m]
        cap_i = caps[c0:c1]
        run_d = np.zeros(m, np.float32)
        run_tsum = np.zeros(m, np.int64)
        run_tmax = np.zeros(m, np.int32)
        size = np.zeros(m, np.int32)
        for k in range(1, kmax + 1):
            j = slice(k - 1, k - 1 + m) if pos is None else pos + (k - 1)
            dk, tk, gk = dc[j], tc[j], gc[j]
            np.maximum(run_d, dk, out=run_d)
            run_tsum += tk
            np.maximum(run_tmax, tk, out=run_tmax)
            ok = (gk == gi) & (cap_i >= k)
            ok &= run_d * k <= max_batch_dur * (1 + 1e-6)
            ok &= run_tsum <= max_tokens
            if joint is not None:
                np.maximum(run_f, fc[j], out=run_f)
                ok &= run_f * (run_tmax + 1) <= limits[k]
            alive = int(np.count_nonzero(ok))
            if alive == 0:
                break
            if pos is None:
                size[ok] = k
            else:
                size[pos[ok]] = k
            # A stopped run never fits again (every aggregate only grows, groups are contiguous),
            # so stopped positions may stay in the work arrays until they are the majority.
            if alive * 2 <= len(ok):  # compact: keep only the growing positions
                pos = np.flatnonzero(ok) if pos is None else pos[ok]
                gi, cap_i = gi[ok], cap_i[ok]
                run_d, run_tsum, run_tmax = run_d[ok], run_tsum[ok], run_tmax[ok]
                if joint is not None:
                    run_f = run_f[ok]
        out[c0:c1] = size
    return out


def _ranks(lens: np.ndarray) -> np.ndarray:
    """[0..l0-1, 0..l1-1, ...] for segment lengths ``lens``."""
    total = int(lens.sum())
    return np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)


def _chain(sizes: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy left-to-right packing inside each group: batch starts and lengths (sorted order).

    Follows start -> start + size for all groups at once (one numpy step per batch of the longest
    group, so groups must be pools, not whole buckets)."""
    n = len(sizes)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    bounds = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True])
    cur, end = bounds[:-1].astype(np.int64), bounds[1:].astype(np.int64)
    starts, lens = [], []
    while len(cur):
        s = sizes[cur]
        emit = s > 0
        starts.append(cur[emit])
        lens.append(s[emit])
        cur = cur + np.maximum(s, 1)
        live = cur < end
        cur, end = cur[live], end[live]
    starts, lens = np.concatenate(starts), np.concatenate(lens)
    o = np.argsort(starts, kind="stable")
    return starts[o], lens[o]


@dataclass
class PackedBatches:
    """Micro-batches of one epoch: batch b is ``rows[offsets[b]:offsets[b+1]]``."""

    rows: np.ndarray  # (R,) index rows, batch after batch
    offsets: np.ndarray  # (M+1,) int64
    max_duration_s: np.ndarray  # (M,) float32 longest clip per batch
    sum_duration_s: np.ndarray  # (M,) float64 total real audio per batch
    max_tokens: np.ndarray  # (M,) int32 longest transcript per batch
    dropped_over_cap: int  # rows that alone break a cap (too long a transcript, joint too big)
    # (L,) seconds of the packed rows per language, when pack_batches was given ``lang``
    language_seconds: np.ndarray | None = None
    dropped_seconds: float = 0.0  # seconds of the rows dropped over a cap

    @property
    def num_batches(self) -> int:
        return len(self.offsets) - 1

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)


def pack_batches(
    rows: np.ndarray,
    duration_s: np.ndarray,
    num_tokens: np.ndarray,
    bucket: np.ndarray,
    bucket_caps: np.ndarray,
    max_batch_dur: float,
    max_tokens_in_batch: int,
    joint: JointCap | None,
    pool_size: int,
    rng: np.random.Generator,
    lang: np.ndarray | None = None,
    num_languages: int = 0,
) -> PackedBatches:
    """Pack index ``rows`` into micro-batches; ``duration_s``, ``num_tokens`` and ``bucket`` (and
    ``lang``, the language code per row, when given) have one entry per *index* row (they are
    read at ``rows``, never copied whole). With ``lang`` the result also carries the packed
    seconds per language (``num_languages`` of them).

    Inside a bucket, rows are dealt into random pools of about ``pool_size`` and each pool is
    sorted by duration and cut greedily: a batch grows while batch size x longest clip <=
    ``max_batch_dur``, size <= the bucket's cap, total tokens <= ``max_tokens_in_batch`` and the
    joint tensor fits ``joint``. Neighbours in a sorted pool have nearly equal durations, so
    padding is small even with 5 buckets, and pools keep batch composition random. The last,
    usually short, batch of every pool goes back into one tail pool per bucket and is re-cut, so
    only one short batch per bucket remains.
    """
    # Ascending rows first: the column reads below then stream through the index in order
    # (~5x faster than in draw order at 50M rows). Which rows share a batch is decided by the
    # random pools, not by this order; it only breaks ties between equal durations.
    rows = np.sort(rows)
    d_r = duration_s[rows].astype(np.float32, copy=False)
    t_r = num_tokens[rows].astype(np.int32, copy=False)
    order, group = _group_sort(bucket[rows], d_r, pool_size, rng)
    src = rows[order]  # index rows in packing order
    d_s, t_s = d_r[order], t_r[order]
    del order
    caps = bucket_caps[group >> 20].astype(np.int16)
    lim = (max_batch_dur, max_tokens_in_batch, joint)
    starts, lens = _chain(_batch_sizes(d_s, t_s, group, caps, *lim), group)
    last = np.r_[group[starts[1:]] != group[starts[:-1]], True] if len(starts) else starts > 0
    # Tail rows, re-sorted by (bucket, duration): positions into the sorted arrays.
    t_pos = _expand(starts[last], lens[last])
    t_bucket = group[t_pos] >> 20
    t_pos = t_pos[np.lexsort((d_s[t_pos], t_bucket))]
    t_bucket.sort()
    t_starts, t_lens = _chain(
        _batch_sizes(d_s[t_pos], t_s[t_pos], t_bucket, caps[t_pos], *lim), t_bucket
    )
    del group, caps, t_bucket
    pos = np.concatenate(
        [_covered(starts[~last], lens[~last], len(src)), t_pos[_expand(t_starts, t_lens)]]
    )
    pos = _index_dtype(pos, len(src))
    lens = np.concatenate([lens[~last], t_lens])
    offsets = np.r_[0, np.cumsum(lens, dtype=np.int64)]
    d_b, t_b = d_s[pos], t_s[pos]
    seg = offsets[:-1]
    empty = len(seg) == 0
    dropped = np.ones(len(src), bool)
    dropped[pos] = False
    dropped = np.flatnonzero(dropped)
    language_seconds = None
    if lang is not None:  # all rows' seconds (in index order: a streaming read) minus dropped
        language_seconds = np.bincount(lang[rows], weights=d_r, minlength=num_languages)
        language_seconds -= np.bincount(
            lang[src[dropped]], weights=d_s[dropped], minlength=num_languages
        )
    return PackedBatches(
        rows=src[pos],
        offsets=offsets,
        max_duration_s=np.zeros(0, np.float32) if empty else np.maximum.reduceat(d_b, seg),
        sum_duration_s=np.zeros(0) if empty else np.add.reduceat(d_b.astype(np.float64), seg),
        max_tokens=np.zeros(0, np.int32) if empty else np.maximum.reduceat(t_b, seg),
        dropped_over_cap=len(dropped),
        language_seconds=language_seconds,
        dropped_seconds=float(d_s[dropped].sum(dtype=np.float64)),
    )


def concat_packed(parts: list[PackedBatches]) -> PackedBatches:
    """The micro-batches of ``parts``, one after the other (batch ids shift by earlier parts)."""
    if not parts:
        return PackedBatches(
            np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.float32), np.zeros(0),
            np.zeros(0, np.int32), 0,
        )  # fmt: skip
    sizes = np.concatenate([p.sizes for p in parts])
    with_languages = all(p.language_seconds is not None for p in parts)
    return PackedBatches(
        rows=np.concatenate([p.rows for p in parts]),
        offsets=np.r_[0, np.cumsum(sizes, dtype=np.int64)],
        max_duration_s=np.concatenate([p.max_duration_s for p in parts]),
        sum_duration_s=np.concatenate([p.sum_duration_s for p in parts]),
        max_tokens=np.concatenate([p.max_tokens for p in parts]),
        dropped_over_cap=sum(p.dropped_over_cap for p in parts),
        language_seconds=sum(p.language_seconds for p in parts) if with_languages else None,
        dropped_seconds=sum(p.dropped_seconds for p in parts),
    )


def _covered(starts: np.ndarray, lens: np.ndarray, n: int) -> np.ndarray:
    """Positions covered by the disjoint runs ``[starts[i], starts[i] + lens[i])`` with
    increasing ``starts``, in order: ``_expand`` with one byte per row of scratch, not 24."""
    marks = np.zeros(n + 1, np.int8)
    marks[starts] = 1
    marks[starts + lens] -= 1
    return np.flatnonzero(np.cumsum(marks[:-1], dtype=np.int8))


def _expand(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions covered by runs ``[starts[i], starts[i] + lens[i])``, run after run."""
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    return np.repeat(starts.astype(np.int64), lens) + _ranks(lens)


def batch_costs(
    sizes: np.ndarray, max_duration_s: np.ndarray, max_tokens: np.ndarray, model: CostModel
) -> np.ndarray:
    """Relative compute cost per micro-batch: padded frames, attention pairs, joint elements."""
    joint = JointCap(1, model.subsampling_factor, model.vocab_size, model.num_durations)
    frames = joint.encoder_frames(max_duration_s)
    b = np.asarray(sizes, np.float64)
    return (
        model.batch_overhead
        + model.frame_cost * b * frames
        + model.attention_cost * b * frames**2
        + model.joint_cost * b * joint.row_elements(max_duration_s, max_tokens)  # B rows computed
    )


def assign_steps(
    costs: np.ndarray, world_size: int, accumulation: int, rng: np.random.Generator
) -> np.ndarray:
    """Micro-batch ids arranged as (steps, world_size, accumulation): every rank gets exactly
    ``accumulation`` micro-batches per optimizer step and per-rank cost is balanced.

    The ``M mod (world_size x accumulation)`` cheapest micro-batches are dropped (counted).
    Batches of similar cost are grouped into the same step (sorted by cost, with random
    tie-breaks; like Lhotse's ``sync_buckets``), the groups are assigned to ranks by greedy
    longest-processing-time (each rank takes ``accumulation`` of them), and steps are shuffled.
    """
    per_step = world_size * accumulation
    m = len(costs)
    steps = m // per_step
    shuffled = rng.permutation(m)
    by_cost = shuffled[np.argsort(-costs[shuffled], kind="stable")]  # dearest first, ties random
    keep = by_cost[: steps * per_step]  # drop the cheapest (usually the short tail batches)
    grid = keep.reshape(steps, per_step)  # each row: one step's batches, dearest first
    out = np.full((steps, world_size, accumulation), -1, np.int64)
    load = np.zeros((steps, world_size))
    count = np.zeros((steps, world_size), np.int64)
    rows = np.arange(steps)
    for p in range(per_step):  # LPT: next-dearest batch to the least-loaded rank with room
        r = np.argmin(np.where(count < accumulation, load, np.inf), axis=1)
        out[rows, r, count[rows, r]] = grid[:, p]
        load[rows, r] += costs[grid[:, p]]
        count[rows, r] += 1
    _refine_by_swaps(out, costs)
    return out[rng.permutation(steps)]


def _refine_by_swaps(out: np.ndarray, costs: np.ndarray, rounds: int = 6) -> None:
    """Improve greedy LPT in place: in every step at once, swap the batch pair between the
    dearest and the cheapest rank that best evens their loads, while that lowers the dearest.

    Greedy LPT under "exactly ``accumulation`` each" is weakest in steps that straddle a jump in
    cost (a few dear batches among cheap ones), where it can leave one rank ~10% over the mean.
    """
    steps, world, accum = out.shape
    if steps == 0 or world < 2:
        return
    rows = np.arange(steps)
    for _ in range(rounds):
        c = costs[out]  # (S, W, A)
        load = c.sum(-1)
        hi, lo = load.argmax(1), load.argmin(1)
        gap = load[rows, hi] - load[rows, lo]
        # delta[s, a, b]: cost moved from hi to lo by swapping hi's slot a with lo's slot b
        delta = c[rows, hi][:, :, None] - c[rows, lo][:, None, :]
        new_gap = np.abs(gap[:, None, None] - 2 * delta)
        ok = (delta > 0) & (new_gap < gap[:, None, None])
        score = np.where(ok, new_gap, np.inf).reshape(steps, -1)
        best = score.argmin(1)
        improve = np.isfinite(score[rows, best])
        if not improve.any():
            return
        s = rows[improve]
        a, b = np.divmod(best[improve], accum)
        h, low = hi[improve], lo[improve]
        tmp = out[s, h, a].copy()
        out[s, h, a] = out[s, low, b]
        out[s, low, b] = tmp


AUTO_CAP_CEILING = 256  # most samples per micro-batch an auto cap allows (the packer loops to it)
AUTO_CAP_QUANTILE = 0.9  # the cap binds for at most the shortest ~10% of a bucket's rows


def auto_bucket_caps(
    edges: np.ndarray,
    duration_s: np.ndarray,
    num_tokens: np.ndarray,
    max_batch_dur: float,
    max_tokens_in_batch: int,
    joint: JointCap | None,
    sample: int = 1 << 20,
) -> np.ndarray:
    """Per-bucket sample caps derived from the other caps (``bucket_batch_sizes: auto``).

    With one sample cap for every bucket (16), a batch of 2 s clips stops at 16 x 2 = 32 s of
    audio while the 16-20 s bucket fills its 120 s. Here each row gets the batch size a batch of
    clips like it could reach under the padded-seconds, token and joint caps; a bucket's cap is
    the ``AUTO_CAP_QUANTILE`` of that over its rows (on an evenly strided sample of at most
    ``sample`` rows: deterministic, and one pass over 50M rows would cost seconds), so the other
    caps, not the sample count, end almost every batch. Those caps still bound every batch.
    """
    nb = len(edges) - 1
    step = max(1, len(duration_s) // sample)
    d = np.asarray(duration_s[::step], np.float64)
    t = np.asarray(num_tokens[::step], np.float64)
    bucket = assign_buckets(d.astype(np.float32), edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.minimum(np.floor(max_batch_dur / np.maximum(d, 1e-3)), max_tokens_in_batch // t)
    if joint is not None:
        k = np.minimum(k, joint.max_batch(d, t))
    caps = np.empty(nb, np.int32)
    for b in range(nb):
        kb = k[(bucket == b) & (k >= 1)]
        if len(kb):
            caps[b] = np.quantile(kb, AUTO_CAP_QUANTILE, method="higher")
        else:  # no data in this bucket: what a batch of its shortest clips allows
            caps[b] = np.floor(max_batch_dur / max(edges[b], 1e-3))
    return np.clip(caps, 1, AUTO_CAP_CEILING).astype(np.int32)


def check_bucket_caps(edges, max_batch_size: int, bucket_batch_sizes) -> np.ndarray:
    """Per-bucket sample caps as an int array; ``ValueError`` saying what to change.
    (``"auto"`` is resolved from the data by ``auto_bucket_caps``, not here.)"""
    nb = len(edges) - 1
    if bucket_batch_sizes is None:
        return np.full(nb, max_batch_size, np.int32)
    caps = np.asarray(bucket_batch_sizes, np.int32)
    if caps.shape != (nb,) or (caps < 1).any():
        raise ValueError(
            f"bucket_batch_sizes needs {nb} positive values (one per bucket of {list(edges)}), "
            f"got {list(bucket_batch_sizes)}"
        )
    return caps


def padding_efficiency(sum_duration_s: np.ndarray, sizes, max_duration_s) -> float:
    """Sum of real durations / sum of padded durations (B x longest clip) over batches."""
    padded = float(np.sum(np.asarray(sizes, np.float64) * max_duration_s))
    return float(np.sum(sum_duration_s)) / padded if padded else math.nan

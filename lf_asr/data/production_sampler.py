"""ProductionBatchSampler: which index rows go into each micro-batch, on each rank, each epoch.

Layers: the pure planning functions of ``batch_planning`` and the per-language streams of
``language_streams`` -> ``plan_epoch`` (the bucketer: one epoch's global plan from the sampler
columns, a pure function of (columns, config, seed, epoch, stream start)) ->
``ProductionBatchSampler`` (owns epoch, rank, world size, position, stream positions and
``state_dict``).

It yields lists of row indices of the production index (metadata only); ``ProductionDataset``
turns each list into tensors. Use it as the DataLoader's *sampler* with ``batch_size=None``::

    sampler = ProductionBatchSampler.from_parquet(index, rank=r, world_size=w, seed=1234)
    loader = DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=8,
                        persistent_workers=True)   # Lightning: use_distributed_sampler=False

Resuming: ``__iter__`` counts the batches it has *handed out*, which with DataLoader prefetching
runs ahead of the batches the training step has *consumed*. Save
``sampler.state_dict(batches_consumed=n)`` with ``n`` = micro-batches this rank's training step
has completed in the current epoch (all ranks have the same count); after ``load_state_dict``
the next iteration yields exactly the batches that followed. The state also carries every
language stream's (pass, position) at the start of the epoch, so the rows drawn after a resume
continue each stream exactly where it stood.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lf_asr.data import batch_planning as bp
from lf_asr.data.language_streams import LanguageStreams, StreamCoverage, epoch_draws
from lf_asr.data.schema import SAMPLER_COLUMNS


@dataclass(frozen=True)
class SamplerConfig:
    """What an epoch plan depends on (besides the data, the seed and the epoch)."""

    max_batch_dur: float = 120.0  # padded audio seconds per micro-batch (B x longest clip)
    max_batch_size: int = 16  # samples per micro-batch (when bucket_batch_sizes is None)
    # Per-bucket sample caps instead: a tuple, or "auto" (derived from the other caps and the
    # data, so short-clip buckets take more samples: batch_planning.auto_bucket_caps).
    bucket_batch_sizes: tuple[int, ...] | str | None = None
    max_tokens_in_batch: int = 400  # total BPE tokens per micro-batch
    temperature: float = 0.3  # language shares p_l ~ hours_l ** T (1 natural, 0 uniform)
    # Hours drawn per epoch (None: as many as the usable corpus holds; see epoch_draws).
    epoch_hours: float | None = None
    # Seconds; the last bucket is closed (a clip of exactly the last edge is kept); clips
    # outside are counted (stats["dropped_out_of_range"]), never drawn.
    bucket_edges: tuple[float, ...] = (0.0, 4.0, 8.0, 12.0, 16.0, 20.0)
    pool_size: int = 4096  # rows per duration-sorted pool inside a bucket
    joint: bp.JointCap | None = None  # optional cap on the TDT joint tensor size
    cost: bp.CostModel = field(default_factory=bp.CostModel)  # rank balancing cost model
    accumulate_grad_batches: int = 1  # micro-batches per rank per optimizer step

    def __post_init__(self) -> None:
        object.__setattr__(self, "bucket_edges", tuple(float(e) for e in self.bucket_edges))
        caps = self.bucket_batch_sizes
        if isinstance(caps, str):
            if caps != "auto":
                raise ValueError(f'bucket_batch_sizes must be "auto", a list or None, got {caps!r}')
        elif caps is not None:
            object.__setattr__(self, "bucket_batch_sizes", tuple(int(c) for c in caps))
        if self.epoch_hours is not None and self.epoch_hours <= 0:
            raise ValueError(f"epoch_hours must be positive (or None), got {self.epoch_hours}")
        e = self.bucket_edges
        if len(e) < 2 or any(b <= a for a, b in itertools.pairwise(e)) or e[0] < 0:
            raise ValueError(f"bucket_edges must be >= 2 increasing non-negative seconds, got {e}")
        if self.max_batch_dur < e[-1]:
            raise ValueError(
                f"max_batch_dur={self.max_batch_dur} cannot hold one clip of the last bucket "
                f"(up to {e[-1]} s): raise it or lower the last bucket edge"
            )
        if self.max_batch_size < 1 or self.max_tokens_in_batch < 1:
            raise ValueError("max_batch_size and max_tokens_in_batch must be at least 1")
        if not 0.0 <= self.temperature <= 1.0:
            raise ValueError(
                f"temperature must be in [0, 1] (1 natural, 0 uniform), got {self.temperature}"
            )
        if self.pool_size < 1 or self.accumulate_grad_batches < 1:
            raise ValueError("pool_size and accumulate_grad_batches must be at least 1")
        if not isinstance(self.bucket_batch_sizes, str):
            bp.check_bucket_caps(e, self.max_batch_size, self.bucket_batch_sizes)


@dataclass
class EpochPlan:
    """One epoch, all ranks: micro-batch b is ``batches.rows[offsets[b]:offsets[b+1]]`` and
    ``steps[s, r, a]`` is the micro-batch rank r runs at optimizer step s, accumulation slot a."""

    batches: bp.PackedBatches
    steps: np.ndarray  # (S, world_size, accumulation) micro-batch ids
    costs: np.ndarray  # (M,) cost of each micro-batch
    stats: dict  # counts and shares, for logs and benchmarks

    def rank_batches(self, rank: int) -> RankBatches:
        """The micro-batches of ``rank`` in the order it runs them, in one compact array."""
        b = self.batches
        ids = self.steps[:, rank, :].reshape(-1)
        sizes = b.offsets[ids + 1] - b.offsets[ids]
        offsets = np.r_[0, np.cumsum(sizes)]
        pos = np.repeat(b.offsets[ids] - offsets[:-1], sizes) + np.arange(offsets[-1])
        dtype = np.int32 if len(b.rows) == 0 or b.rows.max() < 2**31 else np.int64
        return RankBatches(b.rows[pos].astype(dtype), offsets)


@dataclass
class RankBatches:
    """One rank's micro-batches of an epoch: batch i is ``rows[offsets[i]:offsets[i+1]]``."""

    rows: np.ndarray  # (R,) index rows, int32 when they fit
    offsets: np.ndarray  # (M+1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> list[int]:
        return self.rows[self.offsets[i] : self.offsets[i + 1]].tolist()


@dataclass
class StreamBudget:
    """What every epoch of a sampler shares: which rows may be drawn, and how many per epoch."""

    streams: LanguageStreams
    bucket: np.ndarray  # (N,) int8 bucket id per index row, -1 outside the edges
    caps: np.ndarray  # (num_buckets,) sample cap per bucket
    hours: np.ndarray  # (L,) usable hours per language
    probs: np.ndarray  # (L,) target share per language
    draws: np.ndarray  # (L,) rows each language draws per epoch
    out_of_range: int  # rows outside the bucket edges (never drawn)
    over_cap: int  # rows that break a cap on their own (never drawn)


def stream_budget(
    duration_s: np.ndarray,
    lang: np.ndarray,
    num_tokens: np.ndarray,
    num_languages: int,
    config: SamplerConfig,
    seed: int,
) -> StreamBudget:
    """Usable rows, per-bucket caps, target shares and draws per epoch (no epoch involved)."""
    edges = np.asarray(config.bucket_edges)
    bucket = bp.assign_buckets(duration_s, edges)
    in_range = bucket >= 0
    fits = bp.fits_alone(
        duration_s, num_tokens, config.max_batch_dur, config.max_tokens_in_batch, config.joint
    )
    usable = in_range & fits
    del fits
    hours = (
        np.bincount(np.where(usable, lang, 0), weights=np.where(usable, duration_s, 0),
                    minlength=num_languages)
        / 3600
    )  # fmt: skip
    probs = bp.language_probs(hours, config.temperature)
    streams = LanguageStreams(lang, usable, num_languages, seed)
    if config.bucket_batch_sizes == "auto":
        caps = bp.auto_bucket_caps(
            edges,
            duration_s,
            num_tokens,
            config.max_batch_dur,
            config.max_tokens_in_batch,
            config.joint,
        )
    else:
        caps = bp.check_bucket_caps(edges, config.max_batch_size, config.bucket_batch_sizes)
    return StreamBudget(
        streams=streams,
        bucket=bucket,
        caps=caps,
        hours=hours,
        probs=probs,
        draws=epoch_draws(streams.sizes, hours, probs, config.epoch_hours),
        out_of_range=int((~in_range).sum()),
        over_cap=int((in_range & ~usable).sum()),
    )


def plan_epoch(
    duration_s: np.ndarray,
    lang: np.ndarray,
    num_tokens: np.ndarray,
    num_languages: int,
    config: SamplerConfig,
    world_size: int,
    seed: int,
    epoch: int,
    stream_start: np.ndarray | None = None,
    budget: StreamBudget | None = None,
) -> EpochPlan:
    """The global plan of one epoch: a pure function of its arguments (same on every rank).

    ``stream_start``: rows each language stream has drawn before this epoch (default
    ``epoch x draws``, i.e. every earlier epoch drew its full share). ``budget``: a precomputed
    ``stream_budget`` of the same arguments (saves recomputing it every epoch)."""
    rng_pack, rng_steps = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, epoch]).spawn(3)[1:]
    )
    if budget is None:
        budget = stream_budget(duration_s, lang, num_tokens, num_languages, config, seed)
    start = budget.draws * epoch if stream_start is None else np.asarray(stream_start, np.int64)
    rows = budget.streams.draw(start, budget.draws)  # int32 below 2^31 rows (LanguageStreams)
    chapter = budget.streams.chapters(start, budget.draws)
    # Rows grouped by chapter (stable 16-bit radix sort), each chapter packed and its micro-
    # batches assigned to steps on its own, chapters in order (LanguageStreams.chapters).
    order = np.argsort(chapter, kind="stable")
    rows, chapter = rows[order], chapter[order]
    del order
    bounds = np.flatnonzero(np.r_[True, chapter[1:] != chapter[:-1], True]) if len(rows) else [0]
    del chapter
    parts, step_parts = [], []
    carry = np.zeros(0, np.int64)  # micro-batches a chapter could not fill a step with
    carry_costs = np.zeros(0)
    cost_parts = []
    first_id = 0
    for c0, c1 in itertools.pairwise(bounds):
        part = bp.pack_batches(
            rows[c0:c1],
            duration_s,
            num_tokens,
            budget.bucket,
            budget.caps,
            config.max_batch_dur,
            config.max_tokens_in_batch,
            config.joint,
            config.pool_size,
            rng_pack,
            lang=lang,
            num_languages=num_languages,
        )
        parts.append(part)
        part_costs = bp.batch_costs(part.sizes, part.max_duration_s, part.max_tokens, config.cost)
        cost_parts.append(part_costs)
        ids = np.r_[carry, first_id + np.arange(part.num_batches)]
        first_id += part.num_batches
        cost_of = np.r_[carry_costs, part_costs] if len(carry) else part_costs
        st = bp.assign_steps(cost_of, world_size, config.accumulate_grad_batches, rng_steps)
        left = np.ones(len(ids), bool)
        left[st.reshape(-1)] = False
        carry, carry_costs = ids[left], cost_of[left]
        step_parts.append(ids[st])
    packed = bp.concat_packed(parts)
    costs = np.concatenate(cost_parts) if cost_parts else np.zeros(0)
    accum = config.accumulate_grad_batches
    steps = np.concatenate(step_parts) if step_parts else np.zeros((0, world_size, accum), np.int64)
    used = np.zeros(packed.num_batches, bool)
    used[steps.reshape(-1)] = True
    left_over = np.concatenate(  # rows of the micro-batches assign_steps left out
        [packed.rows[packed.offsets[i] : packed.offsets[i + 1]] for i in np.flatnonzero(~used)]
        or [np.zeros(0, np.int64)]
    )
    kept_h = packed.language_seconds if parts else np.zeros(num_languages)
    left_over_s = _seconds_by_language(left_over, lang, duration_s, num_languages)
    kept_h = kept_h - left_over_s
    stats = {
        "rows": len(duration_s),
        "dropped_out_of_range": budget.out_of_range,
        "dropped_over_cap": budget.over_cap + packed.dropped_over_cap,
        "selected_rows": len(rows),
        "micro_batches": packed.num_batches,
        "chapters": len(bounds) - 1,
        "dropped_remainder_batches": int((~used).sum()),
        "steps": int(steps.shape[0]),
        "bucket_caps": budget.caps.tolist(),
        "usable_hours": budget.hours.tolist(),
        "target_share": budget.probs.tolist(),
        "epoch_share": (kept_h / max(kept_h.sum(), 1e-12)).tolist(),
        "epoch_hours": float(kept_h.sum() / 3600),
        "dropped_after_selection_s": float(packed.dropped_seconds + left_over_s.sum()),
        "stream_start": start.tolist(),
        "stream_draws": budget.draws.tolist(),
    }
    return EpochPlan(batches=packed, steps=steps, costs=costs, stats=stats)


def _seconds_by_language(rows, lang, duration_s, num_languages: int, chunk: int = 1 << 22):
    """Seconds per language over index ``rows``, in chunks (a whole-epoch gather and its
    float64 weights would add ~0.6 GB to the plan's peak at 50M rows)."""
    out = np.zeros(num_languages)
    for i in range(0, len(rows), chunk):
        r = rows[i : i + chunk]
        out += np.bincount(lang[r], weights=duration_s[r], minlength=num_languages)
    return out


def _language_codes(values: Sequence[str], languages: Sequence[str]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(languages)}
    unknown = sorted(set(values) - set(lookup))
    if unknown:
        raise ValueError(f"index has language(s) {unknown} not in {list(languages)}: pass them")
    return np.array([lookup[v] for v in values], np.int16)


def load_sampler_columns(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(duration_s float32, language code int16, num_tokens int32, language names) of a
    production parquet, reading only those three columns, one row group at a time into arrays
    sized from the footer: the peak is the result plus one row group (reading the whole table
    first held ~1 GB more at 50M rows, which the Arrow pool then kept)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, read_dictionary=["language"]) as pf:
        return _read_sampler_columns(pf, path)


def _read_sampler_columns(pf, path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    missing = [c for c in SAMPLER_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"{path} lacks sampler column(s) {missing}: rebuild the production index")
    n = pf.metadata.num_rows
    dur = np.empty(n, np.float32)
    lang = np.empty(n, np.int16)
    tok = np.empty(n, np.int32)
    names: list[str] = []
    start = 0
    for group in range(pf.num_row_groups):
        table = pf.read_row_group(group, columns=list(SAMPLER_COLUMNS))
        end = start + table.num_rows
        dur[start:end] = table.column("duration_s").to_numpy()
        tok[start:end] = table.column("num_tokens").to_numpy()
        pos = start
        for chunk in table.column("language").chunks:
            chunk_names = chunk.dictionary.to_pylist()
            names += [name for name in chunk_names if name not in names]
            remap = np.array([names.index(name) for name in chunk_names], np.int16)
            lang[pos : pos + len(chunk)] = remap[chunk.indices.to_numpy(zero_copy_only=False)]
            pos += len(chunk)
        start = end
        del table
    return dur, lang, tok, names


class ProductionBatchSampler:
    """Yields this rank's micro-batches (lists of index rows) for the current epoch.

    Language rebalancing: the share of language l in an epoch (by hours) is p_l ~ n_l ** T, with
    n_l its usable hours; ``temperature`` T = 1 keeps natural shares, T = 0 is uniform. Each
    language is a stream of its rows without replacement that continues across epochs
    (``language_streams``): a row is drawn again only after every row of its language was, and
    small languages are upsampled by cycling their passes. ``coverage()`` reports how far.

    Every rank yields the same number of micro-batches, ``accumulate_grad_batches`` per optimizer
    step, balanced in cost (``batch_planning.assign_steps``). Deterministic in (seed, epoch).
    """

    STATE_KEYS = frozenset(
        {
            "epoch",
            "batches_consumed",
            "seed",
            "world_size",
            "accumulation",
            "plan_fingerprint",
            "stream_positions",
        }
    )

    def __init__(
        self,
        duration_s: np.ndarray,
        language: np.ndarray | Sequence[str],
        num_tokens: np.ndarray,
        *,
        languages: Sequence[str] | None = None,
        config: SamplerConfig | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
    ) -> None:
        self.config = config or SamplerConfig()
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank} world={world_size}")
        self.duration_s = np.asarray(duration_s, np.float32)
        self.num_tokens = np.asarray(num_tokens, np.int32)
        language = np.asarray(language)
        if language.dtype.kind in "US" or language.dtype == object:
            self.languages = list(languages) if languages is not None else sorted(set(language))
            self.lang = _language_codes(language.tolist(), self.languages)
        else:
            if languages is None:
                raise ValueError("integer language codes need `languages` (their names)")
            self.languages = list(languages)
            self.lang = language.astype(np.int16)
        if not len(self.duration_s) == len(self.lang) == len(self.num_tokens):
            raise ValueError("duration_s, language and num_tokens must have one entry per row")
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.epoch = epoch
        self.position = 0  # micro-batches of this epoch already handed out (or restored)
        # Rows each language stream had drawn before epoch e: _stream_offset + e x draws (the
        # offset is non-zero only after restoring positions written by another history).
        self._stream_offset = np.zeros(len(self.languages), np.int64)
        self._budget: StreamBudget | None = None
        self._cache: tuple[tuple, RankBatches, dict] | None = None

    def __getstate__(self) -> dict:
        # The budget (usable rows per language) is rebuilt on demand: DataLoader workers get the
        # sampler pickled and never plan, so they should not carry it.
        return {**self.__dict__, "_budget": None, "_cache": None}

    @classmethod
    def from_parquet(
        cls,
        path: str | Path,
        *,
        languages: Sequence[str] | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        **config_fields,
    ) -> ProductionBatchSampler:
        """Build from a production index, reading only duration_s, language and num_tokens.
        ``config_fields`` are ``SamplerConfig`` fields (max_batch_dur, max_batch_size,
        max_tokens_in_batch, temperature, bucket_edges, joint, accumulate_grad_batches, ...)."""
        dur, lang, tok, names = load_sampler_columns(path)
        return cls.from_columns(
            dur,
            lang,
            tok,
            names,
            languages=languages,
            config=SamplerConfig(**config_fields),
            rank=rank,
            world_size=world_size,
            seed=seed,
        )

    @classmethod
    def from_columns(
        cls,
        duration_s: np.ndarray,
        lang: np.ndarray,
        num_tokens: np.ndarray,
        names: Sequence[str],
        *,
        languages: Sequence[str] | None = None,
        config: SamplerConfig | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ) -> ProductionBatchSampler:
        """From ``load_sampler_columns``' output; ``languages`` fixes the code order (the
        model's language list), else the index's order of appearance is kept."""
        if languages is not None:
            lang = _language_codes(names, languages)[lang] if len(names) else lang
            names = list(languages)
        return cls(
            duration_s,
            lang,
            num_tokens,
            languages=list(names),
            config=config,
            rank=rank,
            world_size=world_size,
            seed=seed,
        )

    # -- planning ----------------------------------------------------------------------------
    @property
    def budget(self) -> StreamBudget:
        """Usable rows, caps and per-epoch draws of every language (built once, then cached)."""
        if self._budget is None:
            self._budget = stream_budget(
                self.duration_s,
                self.lang,
                self.num_tokens,
                len(self.languages),
                self.config,
                self.seed,
            )
        return self._budget

    def stream_start(self, epoch: int | None = None) -> np.ndarray:
        """(L,) rows each language stream has drawn before ``epoch`` (default: the current)."""
        e = self.epoch if epoch is None else epoch
        return np.maximum(self._stream_offset + e * self.budget.draws, 0)

    def coverage(self, epochs_done: int | None = None) -> StreamCoverage:
        """Per-language distinct fraction drawn and repeat factor once ``epochs_done`` epochs
        (default: those before the current one) are drawn. Rows drawn into the few remainder
        micro-batches an epoch drops (``stats["dropped_remainder_batches"]``) count as drawn."""
        return self.budget.streams.coverage(self.stream_start(epochs_done))

    def plan(self, epoch: int | None = None) -> EpochPlan:
        """The global plan (all ranks) of ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else epoch
        return plan_epoch(
            self.duration_s,
            self.lang,
            self.num_tokens,
            len(self.languages),
            self.config,
            self.world_size,
            self.seed,
            e,
            stream_start=self.stream_start(e),
            budget=self.budget,
        )

    def _my_batches(self) -> RankBatches:
        key = (self.epoch, self.stream_start().tobytes())
        if self._cache is None or self._cache[0] != key:
            plan = self.plan()
            self._cache = (key, plan.rank_batches(self.rank), plan.stats)
        if self.position > len(self._cache[1]):
            position, self.position = self.position, 0
            raise ValueError(
                f"batches_consumed={position} exceeds the {len(self._cache[1])} batches of "
                f"epoch {self.epoch}: the index or sampler config changed since the checkpoint"
            )
        return self._cache[1]

    @property
    def stats(self) -> dict:
        """Counts and language shares of the current epoch's plan."""
        self._my_batches()
        return self._cache[2]

    # -- iteration ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._my_batches())

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._my_batches()
        while self.position < len(batches):
            b = batches[self.position]
            self.position += 1
            yield b
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start. A new epoch restarts at its first batch;
        the same epoch (as after ``load_state_dict``) keeps the restored position."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0

    # -- state -------------------------------------------------------------------------------
    def state_dict(self, batches_consumed: int | None = None) -> dict:
        """Resumable state. Pass ``batches_consumed`` (this rank's micro-batches the training
        step finished in this epoch) when a DataLoader prefetches; default: batches handed out."""
        n = self.position if batches_consumed is None else int(batches_consumed)
        if n < 0:
            raise ValueError(f"batches_consumed must be >= 0, got {n}")
        return {
            "plan_fingerprint": self.plan_fingerprint(),
            "epoch": self.epoch,
            "batches_consumed": n,
            "seed": self.seed,
            "world_size": self.world_size,
            "accumulation": self.config.accumulate_grad_batches,
            # Each language stream's (pass, position in pass) at the start of this epoch.
            "stream_positions": dict(
                zip(self.languages, self.budget.streams.positions(self.stream_start()), strict=True)
            ),
        }

    def load_state_dict(self, state: dict) -> None:
        unknown = set(state) - self.STATE_KEYS
        missing = self.STATE_KEYS - set(state)
        if unknown or missing:
            raise ValueError(
                f"sampler state has unknown keys {sorted(unknown)} / lacks {sorted(missing)}: "
                "it was not written by this ProductionBatchSampler version"
            )
        for name, mine in (
            ("seed", self.seed),
            ("world_size", self.world_size),
            ("accumulation", self.config.accumulate_grad_batches),
        ):
            if state[name] != mine:
                raise ValueError(
                    f"checkpoint sampler {name}={state[name]} but this run has {mine}: resume "
                    f"with the same {name} (or start a new epoch without the sampler state)"
                )
        if state["plan_fingerprint"] != self.plan_fingerprint():
            raise ValueError(
                "the index rows or the sampler config differ from the checkpoint's, so its "
                "position means other batches: restore them, or start a new epoch without the "
                "sampler state"
            )
        positions = state["stream_positions"]
        if sorted(positions) != sorted(self.languages):
            raise ValueError(
                f"checkpoint sampler streams are for languages {sorted(positions)} but this run "
                f"has {sorted(self.languages)}: resume with the same languages"
            )
        sizes = self.budget.streams.sizes
        drawn = np.array(
            [int(positions[name][0]) * int(sizes[i]) + int(positions[name][1])
             for i, name in enumerate(self.languages)],
            np.int64,
        )  # fmt: skip
        self.epoch = int(state["epoch"])
        self._stream_offset = drawn - self.epoch * self.budget.draws
        self.position = int(state["batches_consumed"])
        # Checked when the epoch is planned (_my_batches): planning 50M rows takes a minute,
        # restoring the state should not.

    def plan_fingerprint(self) -> str:
        """Changes when the rows, their languages or the config change: a restored position is
        only meaningful for the same plan."""
        import hashlib

        h = hashlib.sha1(repr((self.config, self.languages, len(self.duration_s))).encode())
        for a in (self.duration_s, self.lang, self.num_tokens):
            h.update(np.ascontiguousarray(a[:: max(1, len(a) // 100_000)]).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        """Config and identity, for logs."""
        return {
            "config": asdict(self.config),
            "rank": self.rank,
            "world_size": self.world_size,
            "seed": self.seed,
            "epoch": self.epoch,
            "rows": len(self.duration_s),
        }

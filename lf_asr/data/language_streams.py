"""Per-language streams of index rows, drawn without replacement across epochs.

Every language is an endless stream: pass 0 is a seeded permutation of its usable rows, pass 1
another one, and so on (pass ``k`` of language ``l`` is shuffled with a seed derived from
``(seed, l, k)``, so any pass can be rebuilt on its own). An epoch takes the next ``draws[l]``
rows of each stream, so

* a row is drawn again only after every row of its language has been drawn (no repeats before
  exhaustion, whatever the epoch boundaries);
* small languages are upsampled by cycling their passes as often as their target share needs;
* the state of all streams is one integer per language: the rows drawn so far (``pass =
  drawn // n_l``, ``position = drawn % n_l``). Draws per epoch are fixed, so the state at epoch
  ``e`` is ``offset + e * draws`` and a resume after an epoch boundary is exact.

Draws are counted in rows, not hours: ``draws[l] = epoch_hours * p_l / mean clip length of l``.
Counting rows is what makes the positions a closed form of the epoch; over the ~10^5-10^7 rows a
language draws per epoch the hours it receives are within a fraction of a percent of its target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def epoch_draws(
    rows: np.ndarray, hours: np.ndarray, probs: np.ndarray, epoch_hours: float | None
) -> np.ndarray:
    """Rows each language draws per epoch so that its hours follow ``probs``.

    ``epoch_hours`` None (the default) draws as many hours per epoch as the usable corpus holds.
    Why not one pass over the largest language: at T=0.3 on a realistic mix (Hindi ~25% of the
    hours, ~12% of the target), that epoch is ~2x the corpus, so its plan would need twice the
    memory and time of the index (~100M rows at 150K h), while continuing streams make the epoch
    boundary irrelevant to coverage anyway: the large language is fully seen after
    ``hours_l / (p_l x epoch_hours)`` epochs (~2 there), never sooner with any epoch size.
    """
    rows = np.asarray(rows, np.int64)
    hours = np.asarray(hours, np.float64)
    total_h = float(hours.sum()) if epoch_hours is None else float(epoch_hours)
    if total_h <= 0:
        raise ValueError(f"epoch_hours must be positive, got {epoch_hours}")
    mean_s = np.where(rows > 0, hours * 3600 / np.maximum(rows, 1), np.inf)
    draws = np.round(total_h * 3600 * probs / mean_s)
    return np.where((rows > 0) & (probs > 0), np.maximum(draws, 1), 0).astype(np.int64)


@dataclass
class StreamCoverage:
    """Per language after ``drawn`` rows: distinct rows seen / rows, and draws / rows."""

    rows: np.ndarray  # (L,) usable rows per language
    drawn: np.ndarray  # (L,) rows drawn so far

    @property
    def distinct_fraction(self) -> np.ndarray:
        return np.where(
            self.rows > 0, np.minimum(self.drawn, self.rows) / np.maximum(self.rows, 1), 0.0
        )

    @property
    def repeat_factor(self) -> np.ndarray:
        return np.where(self.rows > 0, self.drawn / np.maximum(self.rows, 1), 0.0)

    def as_dict(self, languages) -> dict:
        return {
            name: {
                "rows": int(self.rows[i]),
                "drawn": int(self.drawn[i]),
                "distinct_fraction": round(float(self.distinct_fraction[i]), 4),
                "repeat_factor": round(float(self.repeat_factor[i]), 3),
            }
            for i, name in enumerate(languages)
        }


class LanguageStreams:
    """The usable rows of every language, and the passes that order them.

    ``lang`` is the language code per index row, ``usable`` which rows may be drawn at all
    (inside the buckets and under every cap on their own).
    """

    def __init__(self, lang: np.ndarray, usable: np.ndarray, num_languages: int, seed: int):
        self.seed = int(seed)
        self.num_languages = num_languages
        n = len(lang)
        idx_dtype = np.int32 if n < 2**31 else np.int64
        code = np.where(usable, lang, num_languages).astype(np.uint16)
        # Stable radix sort of a 16-bit key: O(n), rows ascending inside each language.
        order = np.argsort(code, kind="stable").astype(idx_dtype)
        counts = np.bincount(code, minlength=num_languages + 1)[:num_languages]
        self.bounds = np.r_[0, np.cumsum(counts)].astype(np.int64)
        self.rows = order[: self.bounds[-1]]  # usable rows grouped by language

    @property
    def sizes(self) -> np.ndarray:
        """(L,) usable rows per language."""
        return np.diff(self.bounds)

    def language_rows(self, lang: int) -> np.ndarray:
        return self.rows[self.bounds[lang] : self.bounds[lang + 1]]

    def pass_order(self, lang: int, k: int) -> np.ndarray:
        """Rows of language ``lang`` in the order of its pass ``k``."""
        own = self.language_rows(lang)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5EED, lang, k]))
        if len(own) == 0 or int(own[-1]) >= 2**31:
            return own[rng.permutation(len(own))]
        # Sort uint64 keys (random 33 bits | row): one SIMD sort and no random-access gather,
        # ~3x faster than permutation + take at 15M rows (Fisher-Yates misses the cache at
        # every swap). Rows whose 33-bit draws tie (~n^2 / 2^34 pairs, 0.1% of rows at 15M)
        # keep index order between themselves, a negligible departure from uniform.
        key = rng.integers(0, 1 << 33, len(own), dtype=np.uint64)
        key <<= np.uint64(31)
        key |= own.astype(np.uint64)
        key.sort()
        key &= np.uint64(2**31 - 1)
        return key.astype(own.dtype)

    def draw(self, start: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Rows ``start[l] .. start[l] + count[l] - 1`` of every stream, language after language."""
        out = []
        for lang, (s, c) in enumerate(zip(start.tolist(), count.tolist(), strict=True)):
            n = int(self.sizes[lang])
            if c <= 0 or n == 0:
                continue
            first, last = s // n, (s + c - 1) // n
            for k in range(first, last + 1):
                lo = max(s, k * n) - k * n
                hi = min(s + c, (k + 1) * n) - k * n
                out.append(self.pass_order(lang, k)[lo:hi])
        if not out:
            return np.zeros(0, self.rows.dtype)
        return np.concatenate(out)

    def chapters(self, start: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Chapter (int16) of every row of ``draw(start, count)``, in that order.

        An epoch's rows are consumed in shuffled order, which would mix a stream's pass k with
        its pass k+1: a small language drawn 3 passes in one epoch would see only ~63% of its
        rows by the time it had drawn as many as it has. So the epoch is cut into chapters at
        every pass boundary of every stream (as fractions of the epoch); rows of chapter c are
        trained before those of c+1, and inside one chapter no stream changes pass, so any order
        is safe. Chapters are also proportional slices of every language."""
        cuts = []
        for s, c, n in zip(start.tolist(), count.tolist(), self.sizes.tolist(), strict=True):
            if c > 0 and n > 0:
                j = np.arange(n - s % n, c, n)  # positions in this epoch where a pass begins
                cuts.append(j / c)
        cuts = np.unique(np.concatenate(cuts)) if cuts else np.zeros(0)
        if len(cuts) >= 2**15:
            raise ValueError(f"{len(cuts)} pass boundaries in one epoch: lower epoch_hours")
        out = []
        for c, n in zip(count.tolist(), self.sizes.tolist(), strict=True):
            if c > 0 and n > 0:
                frac = np.arange(c) / c
                out.append(np.searchsorted(cuts, frac, side="right").astype(np.int16))
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def positions(self, drawn: np.ndarray) -> list[list[int]]:
        """(pass, position in pass) of every stream after ``drawn`` rows."""
        n = np.maximum(self.sizes, 1)
        return [[int(d // m), int(d % m)] for d, m in zip(drawn.tolist(), n.tolist(), strict=True)]

    def coverage(self, drawn: np.ndarray) -> StreamCoverage:
        return StreamCoverage(self.sizes.copy(), np.asarray(drawn, np.int64))

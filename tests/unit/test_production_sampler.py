"""ProductionBatchSampler: caps, uniqueness, language shares, DDP lock-step, resume, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loader_factories import sampler_columns

from lf_asr.data.batch_planning import JointCap
from lf_asr.data.production_sampler import (
    ProductionBatchSampler,
    SamplerConfig,
    load_sampler_columns,
)

LANGS = [f"l{i}" for i in range(12)]


def make(n=3000, seed=0, rank=0, world_size=1, sampler_seed=0, **cfg):
    d, lang, tok = sampler_columns(n, seed)
    return ProductionBatchSampler(
        d,
        lang,
        tok,
        languages=LANGS,
        config=SamplerConfig(**cfg),
        rank=rank,
        world_size=world_size,
        seed=sampler_seed,
    )


def all_ranks(world_size, **kw):
    return [make(rank=r, world_size=world_size, **kw) for r in range(world_size)]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(50, 2500),
    seed=st.integers(0, 1000),
    world=st.integers(1, 4),
    accum=st.integers(1, 3),
    temperature=st.sampled_from([0.0, 0.3, 1.0]),
    max_batch_size=st.integers(1, 20),
    max_tokens=st.integers(60, 500),
    joint=st.booleans(),
)
def test_every_rank_batch_meets_every_cap_and_rows_repeat_only_after_their_language_is_exhausted(
    n, seed, world, accum, temperature, max_batch_size, max_tokens, joint
):
    jc = JointCap(max_elements=3 * 10**8, vocab_size=1024, fused_batch_size=2) if joint else None
    samplers = all_ranks(
        world,
        n=n,
        seed=seed,
        accumulate_grad_batches=accum,
        temperature=temperature,
        max_batch_size=max_batch_size,
        max_tokens_in_batch=max_tokens,
        joint=jc,
    )
    d, lang, tok = sampler_columns(n, seed)
    drawn = np.zeros(n, np.int64)  # times each row was drawn, over all epochs so far
    for epoch in range(3):
        yielded: list[int] = []
        for s in samplers:
            s.set_epoch(epoch)
        lengths = {len(list(s)) for s in samplers}
        assert len(lengths) == 1, "every rank yields the same number of micro-batches"
        assert lengths.pop() % accum == 0, "whole optimizer steps only"
        for s in samplers:
            for batch in s:
                i = np.array(batch)
                assert 1 <= len(i) <= max_batch_size
                assert len(i) * d[i].max() <= 120.0 * (1 + 1e-6)
                assert tok[i].sum() <= max_tokens
                assert (d[i] <= 20.0).all()
                if jc is not None:
                    assert jc.elements(len(i), d[i].max(), tok[i].max()) <= jc.max_elements
                yielded.extend(batch)
        plan = samplers[0].plan()
        packed = plan.batches.rows
        assert np.isin(yielded, packed).all()
        np.add.at(drawn, packed, 1)
        # Each language drew exactly its per-epoch share of rows, and a row is drawn again
        # only after every usable row of its language was: counts differ by at most one.
        usable = samplers[0].budget.streams
        for li in range(12):
            own = usable.language_rows(li)
            assert (lang[packed] == li).sum() == plan.stats["stream_draws"][li]
            if len(own):
                assert drawn[own].max() - drawn[own].min() <= 1, f"language {li} epoch {epoch}"
        assert drawn[np.setdiff1d(np.arange(n), usable.rows)].sum() == 0, "unusable never drawn"


@pytest.mark.parametrize("temperature", [0.0, 0.3, 1.0])
def test_language_shares_match_the_temperature_target_within_one_point(temperature):
    d, lang, _ = sampler_columns(40000, 1)
    samplers = all_ranks(2, n=40000, seed=1, temperature=temperature)
    hours = np.zeros(12)
    for s in samplers:
        for batch in s:
            np.add.at(hours, lang[batch], d[batch])
    share = hours / hours.sum()
    target = np.array(samplers[0].stats["target_share"])
    usable = np.bincount(lang[d < 20], weights=d[d < 20], minlength=12)
    np.testing.assert_allclose(target, usable**temperature / (usable**temperature).sum())
    assert np.abs(share - target).max() < 0.01


def test_ranks_are_balanced_in_cost_per_step():
    # Production's accumulation (4). Each chapter of an epoch is balanced on its own, so on tiny
    # plans (here ~13 chapters of a few steps) fewer batches per step balance worse.
    s = make(n=20000, world_size=8, accumulate_grad_batches=4)
    plan = s.plan()
    per_rank = plan.costs[plan.steps].sum(-1)
    assert (per_rank.max(1) / per_rank.mean(1)).max() <= 1.05


def test_plan_is_a_function_of_seed_and_epoch():
    a, b = make(sampler_seed=5), make(sampler_seed=5)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(make(sampler_seed=6)) != list(b)


@settings(max_examples=20, deadline=None)
@given(stop=st.integers(0, 10**6), accum=st.integers(1, 3), world=st.integers(1, 3))
def test_resume_mid_epoch_yields_exactly_the_remaining_batches(stop, accum, world):
    full = list(make(n=800, world_size=world, rank=world - 1, accumulate_grad_batches=accum))
    stop %= len(full) + 1
    first = make(n=800, world_size=world, rank=world - 1, accumulate_grad_batches=accum)
    it = iter(first)
    for _ in range(stop):
        next(it)
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = make(n=800, world_size=world, rank=world - 1, accumulate_grad_batches=accum)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # what Lightning calls on restart: the same epoch keeps the position
    assert list(resumed) == full[stop:]
    assert list(resumed) == full  # the next pass is a whole epoch again


def test_state_counts_consumed_batches_not_prefetched_ones():
    s = make(n=800)
    full = list(s)
    it = iter(s)
    for _ in range(7):  # a DataLoader with workers pulls ahead of the training step
        next(it)
    state = s.state_dict(batches_consumed=3)
    assert state["batches_consumed"] == 3
    resumed = make(n=800)
    resumed.load_state_dict(state)
    assert list(resumed) == full[3:]


def test_load_state_dict_rejects_unknown_keys_and_other_runs():
    s = make(n=300)
    state = s.state_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        s.load_state_dict({**state, "shuffle": True})
    with pytest.raises(ValueError, match="world_size"):
        make(n=300, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="sampler config differ"):
        make(n=300, max_batch_size=8).load_state_dict(state)
    with pytest.raises(ValueError, match="index rows"):
        make(n=301).load_state_dict(state)
    s.load_state_dict({**state, "batches_consumed": 10**6})  # checked when the epoch is planned
    with pytest.raises(ValueError, match="exceeds"):
        list(s)


def test_a_new_epoch_starts_at_its_first_batch():
    s = make(n=500)
    it = iter(s)
    next(it)
    s.set_epoch(3)
    assert s.position == 0 and s.state_dict()["epoch"] == 3


def test_sampler_pickles_with_its_state():
    s = make(n=500, world_size=2, rank=1)
    it = iter(s)
    next(it)
    clone = pickle.loads(pickle.dumps(s))
    assert clone.state_dict() == s.state_dict() and list(clone) == list(s)


def test_from_parquet_reads_only_the_sampler_columns(tmp_path):
    d, lang, tok = sampler_columns(600, 2)
    names = np.array(LANGS)[lang]
    # An index with *only* the three sampler columns works: nothing else is read.
    path = tmp_path / "idx.parquet"
    pq.write_table(
        pa.table({"duration_s": d, "language": names, "num_tokens": tok}), path, row_group_size=100
    )
    dur2, lang2, tok2, found = load_sampler_columns(path)
    assert np.array_equal(dur2, d) and np.array_equal(tok2, tok)
    assert np.array_equal(np.array(found)[lang2], names)
    s = ProductionBatchSampler.from_parquet(path, languages=LANGS, max_batch_size=8, seed=3)
    ref = ProductionBatchSampler(
        d, lang, tok, languages=LANGS, config=SamplerConfig(max_batch_size=8), seed=3
    )
    assert list(s) == list(ref)
    with pytest.raises(ValueError, match="not in"):
        ProductionBatchSampler.from_parquet(path, languages=LANGS[:3])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bucket_edges": (0, 4, 4)}, "increasing"),
        ({"max_batch_dur": 10.0}, "cannot hold one clip"),
        ({"temperature": 1.5}, "temperature"),
        ({"bucket_batch_sizes": (8, 8)}, "needs 5 positive"),
        ({"accumulate_grad_batches": 0}, "at least 1"),
    ],
)
def test_config_validation_says_what_to_change(fields, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**fields)

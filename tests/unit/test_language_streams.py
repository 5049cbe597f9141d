"""Language streams: no repeats before exhaustion, temperature shares, coverage, exact resume."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loader_factories import sampler_columns

from lf_asr.data import batch_planning as bp
from lf_asr.data.language_streams import LanguageStreams, epoch_draws
from lf_asr.data.production_sampler import ProductionBatchSampler, SamplerConfig

LANGS = [f"l{i}" for i in range(12)]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=4),
    chunks=st.lists(st.integers(0, 150), min_size=1, max_size=8),
    seed=st.integers(0, 100),
)
def test_a_row_repeats_only_after_every_row_of_its_language_was_drawn(sizes, chunks, seed):
    lang = np.repeat(np.arange(len(sizes)), sizes).astype(np.int16)
    usable = np.ones(len(lang), bool)
    usable[::7] = False  # unusable rows are never drawn
    streams = LanguageStreams(lang, usable, len(sizes), seed)
    drawn = np.zeros(len(lang), np.int64)
    start = np.zeros(len(sizes), np.int64)
    for c in chunks:  # epochs of any size, continuing the streams
        count = np.full(len(sizes), c, np.int64)
        rows = streams.draw(start, count)
        np.add.at(drawn, rows, 1)
        start += count
        for li in range(len(sizes)):
            own = streams.language_rows(li)
            assert (lang[own] == li).all() and usable[own].all()
            if len(own):
                assert drawn[own].sum() == start[li]
                assert drawn[own].max() - drawn[own].min() <= 1
    assert drawn[~usable].sum() == 0
    cov = streams.coverage(start)
    n = streams.sizes
    expect = np.where(n > 0, np.minimum(start, n) / np.maximum(n, 1), 0)
    np.testing.assert_allclose(cov.distinct_fraction, expect)


def test_passes_are_rebuilt_identically_from_the_seed():
    lang = np.zeros(1000, np.int16)
    a = LanguageStreams(lang, np.ones(1000, bool), 1, seed=3)
    b = LanguageStreams(lang, np.ones(1000, bool), 1, seed=3)
    assert np.array_equal(a.pass_order(0, 5), b.pass_order(0, 5))
    assert not np.array_equal(a.pass_order(0, 5), a.pass_order(0, 6)), "each pass reshuffled"
    assert not np.array_equal(
        a.pass_order(0, 0), LanguageStreams(lang, lang >= 0, 1, 4).pass_order(0, 0)
    )


def test_a_pass_is_a_uniform_shuffle_of_its_language_rows():
    lang = np.tile(np.arange(2, dtype=np.int16), 6)  # language 1: rows 1, 3, ..., 11
    streams = LanguageStreams(lang, np.ones(len(lang), bool), 2, seed=0)
    first = np.zeros(12, np.int64)
    for k in range(3000):
        order = streams.pass_order(1, k)
        assert sorted(order.tolist()) == [1, 3, 5, 7, 9, 11], "a permutation of its rows"
        first[order[0]] += 1
    # each of the 6 rows leads a pass 1/6 of the time (binomial sd ~20 of 500)
    assert (np.abs(first[1::2] - 500) < 100).all(), first[1::2].tolist()


def test_epoch_draws_follow_the_target_hours():
    rows = np.array([1000, 100, 0])
    hours = np.array([10.0, 2.0, 0.0])
    probs = np.array([0.6, 0.4, 0.0])
    draws = epoch_draws(rows, hours, probs, None)  # default: the usable corpus' hours
    mean_s = hours[:2] * 3600 / rows[:2]
    np.testing.assert_allclose(draws[:2] * mean_s / 3600, [0.6 * 12, 0.4 * 12], rtol=1e-3)
    assert draws[2] == 0
    assert epoch_draws(rows, hours, probs, 24.0)[0] == 2 * draws[0]
    with pytest.raises(ValueError, match="epoch_hours"):
        epoch_draws(rows, hours, probs, 0.0)


def make(n=4000, epoch_hours=None, **kw):
    d, lang, tok = sampler_columns(n, 1)
    return ProductionBatchSampler(
        d, lang, tok, languages=LANGS, config=SamplerConfig(epoch_hours=epoch_hours), **kw
    )


def test_big_languages_are_covered_before_small_ones_repeat_much():
    s = make(n=20000, epoch_hours=None)
    sizes = s.budget.streams.sizes
    cov1 = s.coverage(1)
    # At T=0.3 the largest language draws less than its rows per epoch, the smallest more.
    assert cov1.repeat_factor[0] < 1 < cov1.repeat_factor[int(np.argmin(sizes))]
    epochs = int(np.ceil(1 / cov1.repeat_factor[0]))
    assert (s.coverage(epochs).distinct_fraction[sizes > 0] == 1.0).all()
    assert s.coverage(0).drawn.sum() == 0


@pytest.mark.parametrize("temperature", [0.3, 1.0])
def test_shares_over_several_epochs_follow_the_temperature_target(temperature):
    d, lang, tok = sampler_columns(30000, 2)
    s = ProductionBatchSampler(
        d, lang, tok, languages=LANGS, config=SamplerConfig(temperature=temperature)
    )
    hours = np.zeros(12)
    for epoch in range(3):
        rows = s.plan(epoch).batches.rows
        np.add.at(hours, lang[rows], d[rows])
    target = bp.language_probs(s.budget.hours, temperature)
    assert np.abs(hours / hours.sum() - target).max() < 0.01


@pytest.mark.parametrize("stop_epoch", [0, 1, 2])
def test_resume_across_an_epoch_boundary_continues_every_stream_exactly(stop_epoch):
    run = make(world_size=2, rank=1)
    expected = {}
    for epoch in range(4):
        run.set_epoch(epoch)
        expected[epoch] = list(run)
    stopped = make(world_size=2, rank=1)
    for epoch in range(stop_epoch + 1):
        stopped.set_epoch(epoch)
        it = iter(stopped)
        for _ in range(3 if epoch == stop_epoch else len(stopped)):
            next(it)
    state = pickle.loads(pickle.dumps(stopped.state_dict(batches_consumed=3)))
    resumed = make(world_size=2, rank=1)
    resumed.load_state_dict(state)
    resumed.set_epoch(stop_epoch)
    assert list(resumed) == expected[stop_epoch][3:]
    for epoch in range(stop_epoch + 1, 4):
        resumed.set_epoch(epoch)
        assert list(resumed) == expected[epoch]


def test_restored_stream_positions_decide_the_rows_not_the_epoch_number():
    a = make()
    a.set_epoch(1)
    state = a.state_dict()
    assert state["stream_positions"]["l0"] == a.budget.streams.positions(a.stream_start())[0]
    b = make()
    b.load_state_dict({**state, "epoch": 5})  # e.g. epochs counted differently after a restart
    assert np.array_equal(b.stream_start(5), a.stream_start(1))
    assert np.array_equal(b.stream_start(6), a.stream_start(2))
    assert np.array_equal(np.sort(b.plan(5).batches.rows), np.sort(a.plan(1).batches.rows))
    with pytest.raises(ValueError, match="same languages"):
        b.load_state_dict({**state, "stream_positions": {"xx": [0, 0]}})


def test_at_every_step_each_language_has_seen_as_many_distinct_rows_as_it_drew():
    """Chapters keep a stream's passes in order within an epoch: without them a language drawn
    three passes in one epoch would, after drawing as many rows as it has, have seen ~63%."""
    d, lang, tok = sampler_columns(20000, 3)
    s = ProductionBatchSampler(d, lang, tok, languages=LANGS)  # one rank, no accumulation
    sizes = s.budget.streams.sizes
    assert s.coverage(1).repeat_factor.max() > 2, "some language wraps within an epoch"
    seen = np.zeros(len(d), bool)
    distinct = np.zeros(12, np.int64)
    drawn = np.zeros(12, np.int64)
    for epoch in range(3):
        plan = s.plan(epoch)
        assert plan.stats["chapters"] > 1
        for b in plan.steps.reshape(-1):
            rows = plan.batches.rows[plan.batches.offsets[b] : plan.batches.offsets[b + 1]]
            new = rows[~seen[rows]]
            seen[new] = True
            np.add.at(distinct, lang[new], 1)
            np.add.at(drawn, lang[rows], 1)
            assert (distinct >= np.minimum(sizes, drawn)).all(), (epoch, b)

"""The pure planning functions: buckets, temperature shares, row selection, packing, steps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lf_asr.data import batch_planning as bp

EDGES = np.array([0.0, 4.0, 8.0, 12.0, 16.0, 20.0])


def test_assign_buckets_uses_half_open_edges_and_marks_outside():
    d = np.array([0.0, 3.99, 4.0, 19.99, 20.0, 25.0, -1.0])
    assert bp.assign_buckets(d, EDGES).tolist() == [0, 0, 1, 4, -1, -1, -1]


def test_language_probs_follow_the_n_to_the_t_convention():
    hours = np.array([100.0, 25.0, 0.0])
    np.testing.assert_allclose(bp.language_probs(hours, 1.0), [0.8, 0.2, 0.0])
    np.testing.assert_allclose(bp.language_probs(hours, 0.0), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(bp.language_probs(hours, 0.5), [10 / 15, 5 / 15, 0.0])
    with pytest.raises(ValueError, match="no language"):
        bp.language_probs(np.zeros(3), 0.3)


def test_epoch_hours_use_the_scarcest_language_whole_and_meet_the_shares():
    hours = np.array([100.0, 25.0, 4.0])
    probs = bp.language_probs(hours, 0.5)
    got = bp.epoch_language_hours(hours, probs)
    assert (got <= hours + 1e-9).all() and np.isclose(got[2], 4.0)
    np.testing.assert_allclose(got / got.sum(), probs)


def test_select_epoch_rows_fills_each_budget_within_one_clip():
    rng = np.random.default_rng(0)
    lang = rng.integers(0, 3, 5000).astype(np.int16)
    d = rng.uniform(0.5, 10, 5000).astype(np.float32)
    budget = np.array([1000.0, 5000.0, 1e9])
    rows = bp.select_epoch_rows(lang, d, budget, np.random.default_rng(1))
    got = np.bincount(lang[rows], weights=d[rows], minlength=3)
    assert (got <= budget + 1e-3).all()
    assert (got[:2] > budget[:2] - 10).all()
    assert (lang[rows] == 2).sum() == (lang == 2).sum()  # a covered language is taken whole
    assert len(np.unique(rows)) == len(rows)


def test_joint_elements_match_the_tdt_joint_shape():
    cap = bp.JointCap(max_elements=10**9, subsampling_factor=8, vocab_size=1024, num_durations=5)
    # 16 s -> 1601 mel frames -> 201 encoder frames; 30 tokens -> U+1 = 31; V+1+D = 1030
    assert cap.elements(4, 16.0, 30) == 4 * 201 * 31 * 1030


caps_strategy = st.fixed_dictionaries(
    {
        "n": st.integers(0, 400),
        "seed": st.integers(0, 2**16),
        "max_dur": st.floats(20.0, 200.0),
        "max_tok": st.integers(40, 600),
        "cap": st.integers(1, 24),
        "pool": st.integers(1, 64),
        "joint": st.one_of(st.none(), st.integers(2 * 10**5, 5 * 10**6)),
    }
)


@settings(max_examples=60, deadline=None)
@given(caps_strategy)
def test_no_packed_batch_breaks_any_cap_and_no_row_repeats(p):
    rng = np.random.default_rng(p["seed"])
    # Columns per index row; only every third row from row 7 on is packed.
    d = rng.uniform(0.3, 19.9, 3 * p["n"] + 7).astype(np.float32)
    tok = rng.integers(1, 80, len(d)).astype(np.int32)
    bucket = bp.assign_buckets(d, EDGES)
    caps = rng.integers(1, p["cap"] + 1, len(EDGES) - 1).astype(np.int32)
    joint = None if p["joint"] is None else bp.JointCap(p["joint"], 8, 64, 5)
    rows = np.arange(p["n"]) * 3 + 7
    packed = bp.pack_batches(
        rows, d, tok, bucket, caps, p["max_dur"], p["max_tok"], joint, p["pool"], rng
    )
    seen = []
    for b in range(packed.num_batches):
        r = packed.rows[packed.offsets[b] : packed.offsets[b + 1]]
        i = r
        assert len(r) >= 1 and ((r - 7) % 3 == 0).all() and (r >= 7).all(), "only given rows"
        assert len(r) * d[i].max() <= p["max_dur"] * (1 + 1e-6), "padded duration cap"
        assert len(r) <= caps[bucket[i]].min(), "bucket sample cap"
        assert len(set(bucket[i])) == 1, "one bucket per batch"
        assert tok[i].sum() <= p["max_tok"], "token cap"
        if joint is not None:
            assert joint.elements(len(r), d[i].max(), tok[i].max()) <= joint.max_elements
        assert packed.max_duration_s[b] == d[i].max() and packed.max_tokens[b] == tok[i].max()
        seen.extend(r.tolist())
    assert len(seen) == len(set(seen)), "no row twice"
    assert len(seen) + packed.dropped_over_cap == p["n"], "every row batched or counted"


def test_sorted_pools_pad_little_on_a_gamma_mix():
    rng = np.random.default_rng(0)
    d = np.clip(rng.gamma(2.0, 3.5, 20000), 0.3, 19.9).astype(np.float32)
    tok = np.ones(len(d), np.int32)
    packed = bp.pack_batches(
        np.arange(len(d)),
        d,
        tok,
        bp.assign_buckets(d, EDGES),
        np.full(5, 16, np.int32),
        120.0,
        10**6,
        None,
        4096,
        rng,
    )
    eff = bp.padding_efficiency(packed.sum_duration_s, packed.sizes, packed.max_duration_s)
    assert eff > 0.95


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 300), st.integers(1, 8), st.integers(1, 4), st.integers(0, 2**16))
def test_assign_steps_gives_every_rank_the_same_count_once_each(m, world, accum, seed):
    rng = np.random.default_rng(seed)
    costs = rng.uniform(1, 100, m)
    steps = bp.assign_steps(costs, world, accum, rng)
    assert steps.shape == (m // (world * accum), world, accum)
    flat = steps.reshape(-1)
    assert len(set(flat.tolist())) == len(flat) and (flat >= 0).all()
    if 0 < len(flat) < m:  # the dropped ones are the cheapest
        assert costs[flat].min() >= np.delete(costs, flat).max()


def test_assign_steps_balances_rank_costs():
    rng = np.random.default_rng(3)
    costs = rng.gamma(2.0, 100.0, 8 * 4 * 200) + 1000.0
    steps = bp.assign_steps(costs, 8, 4, rng)
    per_rank = costs[steps].sum(-1)
    assert (per_rank.max(1) / per_rank.mean(1)).max() < 1.05


def test_bucket_caps_validation_says_what_to_change():
    with pytest.raises(ValueError, match="needs 5 positive values"):
        bp.check_bucket_caps(EDGES, 16, [1, 2])
    assert bp.check_bucket_caps(EDGES, 16, None).tolist() == [16] * 5


@pytest.mark.parametrize("pool_size", [64, 1])  # 16-bit radix path; > 2**16 pools: int64 keys
def test_group_sort_orders_rows_by_bucket_pool_then_duration(pool_size):
    rng = np.random.default_rng(5)
    d = rng.uniform(0.3, 19.9, 70_000).astype(np.float32)
    bucket = bp.assign_buckets(d, EDGES)
    order, group = bp._group_sort(bucket, d, pool_size, rng)
    assert sorted(order.tolist()) == list(range(len(d))), "a permutation"
    assert (np.diff(group.astype(np.int64)) >= 0).all(), "pools contiguous, buckets in order"
    assert (group >> 20 == bucket[order]).all()
    same = group[1:] == group[:-1]
    step = np.diff(d[order])[same]
    assert (step >= -20.0 / 65535).all(), "durations ascend inside a pool (to the quantum)"
    sizes = np.bincount(np.unique(group, return_inverse=True)[1])
    assert sizes.max() <= 3 * pool_size + 10, "pools of about pool_size rows"

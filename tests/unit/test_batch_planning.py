"""The pure planning functions: buckets, temperature shares, row selection, packing, steps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lf_asr.data import batch_planning as bp

EDGES = np.array([0.0, 4.0, 8.0, 12.0, 16.0, 20.0])


def test_assign_buckets_closes_the_last_edge_and_marks_outside():
    d = np.array([0.0, 3.99, 4.0, 19.99, 20.0, 20.01, 25.0, -1.0], np.float32)
    assert bp.assign_buckets(d, EDGES).tolist() == [0, 0, 1, 4, 4, -1, -1, -1]


def test_fits_alone_marks_rows_no_batch_can_hold():
    d = np.array([5.0, 5.0, 30.0, 10.0], np.float32)
    tok = np.array([10, 500, 10, 60], np.int32)
    joint = bp.JointCap(2 * 126 * 51 * 1030, 8, 1024, 5, fused_batch_size=4)  # 1 x 10 s x 50 tok
    assert bp.fits_alone(d, tok, 20.0, 400, None).tolist() == [True, False, False, True]
    assert bp.fits_alone(d, tok, 20.0, 400, joint).tolist() == [True, False, False, False]


def test_language_probs_follow_the_n_to_the_t_convention():
    hours = np.array([100.0, 25.0, 0.0])
    np.testing.assert_allclose(bp.language_probs(hours, 1.0), [0.8, 0.2, 0.0])
    np.testing.assert_allclose(bp.language_probs(hours, 0.0), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(bp.language_probs(hours, 0.5), [10 / 15, 5 / 15, 0.0])
    with pytest.raises(ValueError, match="no language"):
        bp.language_probs(np.zeros(3), 0.3)


def test_joint_elements_count_the_whole_batch_gradient_plus_the_live_fused_rows():
    fused = bp.JointCap(10**9, subsampling_factor=8, vocab_size=1024, num_durations=5,
                        fused_batch_size=4)  # fmt: skip
    unfused = bp.JointCap(10**9, subsampling_factor=8, vocab_size=1024, num_durations=5)
    # 16 s -> 1601 mel frames -> 201 encoder frames; 30 tokens -> U+1 = 31; V+1+D = 1030
    one = 201 * 31 * 1030
    assert fused.row_elements(16.0, 30) == one
    # B gradients (the numba loss keeps them until backward) + min(B, fused) live joint rows
    assert fused.elements(10, 16.0, 30) == (10 + 4) * one
    assert fused.elements(3, 16.0, 30) == (3 + 3) * one
    assert unfused.elements(10, 16.0, 30) == 20 * one


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 10**10), st.floats(0.3, 40.0), st.integers(1, 300), st.sampled_from([None, 1, 4])
)
def test_joint_max_batch_is_the_largest_batch_under_the_cap(cap, dur, tok, fused):
    joint = bp.JointCap(cap, 8, 1024, 5, fused_batch_size=fused)
    b = int(joint.max_batch(dur, tok))
    assert b == 0 or joint.elements(b, dur, tok) <= cap
    assert joint.elements(b + 1, dur, tok) > cap


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
    rows = rng.permutation(np.arange(p["n"]) * 3 + 7)  # in draw order, as the sampler passes
    lang = rng.integers(0, 3, len(d)).astype(np.int16)
    packed = bp.pack_batches(
        rows, d, tok, bucket, caps, p["max_dur"], p["max_tok"], joint, p["pool"], rng,
        lang=lang, num_languages=3,
    )  # fmt: skip
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
    packed_rows = packed.rows
    expect = np.bincount(lang[packed_rows], weights=d[packed_rows], minlength=3)
    np.testing.assert_allclose(packed.language_seconds, expect, rtol=1e-9, atol=1e-6)
    dropped = np.setdiff1d(rows, packed_rows)
    assert packed.dropped_seconds == pytest.approx(float(d[dropped].sum(dtype=np.float64)))


@settings(max_examples=200, deadline=None)
@given(
    batch=st.integers(1, 300),
    dur=st.floats(0.0, 40.0, width=32),
    tok=st.integers(0, 600),
    fused=st.sampled_from([None, 1, 4, 16]),
    slack=st.sampled_from([-1, 0, 1, 0.5, 10**6]),
)
def test_joint_frames_tokens_limit_decides_exactly_as_elements(batch, dur, tok, fused, slack):
    # the packer checks frames x (tokens + 1) <= frames_tokens_limit(B) instead of elements();
    # caps at, just under and just over the batch's own element count test the boundary
    exact = bp.JointCap(1, 8, 1024, 5, fused_batch_size=fused).elements(batch, dur, tok)
    cap = max(1, int(exact) + slack) if slack != 0.5 else exact + 0.5
    joint = bp.JointCap(cap, 8, 1024, 5, fused_batch_size=fused)
    frames = joint.encoder_frames(np.float32(dur))
    by_limit = frames * (tok + 1) <= joint.frames_tokens_limit(batch)
    assert by_limit == (joint.elements(batch, np.float32(dur), tok) <= cap)


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


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([None, 4 * 10**8]))
def test_auto_caps_give_short_clips_more_samples_and_every_cap_still_holds(seed, joint_cap):
    rng = np.random.default_rng(seed)
    d = np.clip(rng.gamma(2.0, 3.5, 20000), 0.3, 20.0).astype(np.float32)
    tok = np.maximum(1, d * rng.uniform(2, 5, len(d))).astype(np.int32)
    joint = None if joint_cap is None else bp.JointCap(joint_cap, 8, 1024, 5, fused_batch_size=4)
    caps = bp.auto_bucket_caps(EDGES, d, tok, 120.0, 400, joint)
    assert (caps >= 1).all() and (caps <= bp.AUTO_CAP_CEILING).all()
    assert caps[0] > 16 and (np.diff(caps) <= 0).all(), "shorter clips, more samples"
    bucket = bp.assign_buckets(d, EDGES)
    ok = bp.fits_alone(d, tok, 120.0, 400, joint) & (bucket >= 0)
    rows = np.flatnonzero(ok)
    packed = bp.pack_batches(rows, d, tok, bucket, caps, 120.0, 400, joint, 4096, rng)
    assert packed.dropped_over_cap == 0
    for b in range(packed.num_batches):
        i = packed.rows[packed.offsets[b] : packed.offsets[b + 1]]
        assert len(i) <= caps[bucket[i[0]]] and len(i) * d[i].max() <= 120.0 * (1 + 1e-6)
        assert tok[i].sum() <= 400
        if joint is not None:
            assert joint.elements(len(i), d[i].max(), tok[i].max()) <= joint.max_elements
    # The short bucket now fills its batches: mean audio per batch near the long bucket's.
    first = bucket[packed.rows[packed.offsets[:-1]]]
    audio = [packed.sum_duration_s[first == b].mean() for b in (0, 4)]
    assert audio[0] >= 0.8 * audio[1]


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


def _brute_batch_sizes(d, t, g, caps, max_dur, max_tokens, joint):
    """For each i: the largest k such that every run i..i+j-1 (j <= k) stays in i's group and
    under every cap — the definition ``_batch_sizes`` vectorises."""
    out = np.zeros(len(d), np.int32)
    for i in range(len(d)):
        for k in range(1, int(caps[i]) + 1):
            if i + k > len(d) or g[i + k - 1] != g[i]:
                break
            run_d, run_t = d[i : i + k], t[i : i + k]
            if run_d.max() * k > max_dur * (1 + 1e-6) or run_t.sum() > max_tokens:
                break
            if (
                joint is not None
                and joint.elements(k, run_d.max(), run_t.max()) > joint.max_elements
            ):
                break
            out[i] = k
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), sort=st.booleans(), with_joint=st.booleans())
def test_batch_sizes_equal_the_definition_whatever_stops_early(seed, sort, with_joint):
    # positions stop at very different k (long clips after a few rows, short ones at the cap),
    # which is what the packer's work-array compaction relies on being exact
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    d = rng.uniform(0.3, 30, n).astype(np.float32)
    d = np.sort(d) if sort else d
    t = rng.integers(1, 120, n).astype(np.int32)
    g = np.sort(rng.integers(0, int(rng.integers(1, 6)), n)).astype(np.int32)
    caps = rng.integers(1, 40, n).astype(np.int32)
    joint = bp.JointCap(max_elements=3 * 10**8, vocab_size=1024) if with_joint else None
    got = bp._batch_sizes(d, t, g, caps, 120.0, 900, joint, chunk=int(rng.integers(1, 200)))
    assert got.tolist() == _brute_batch_sizes(d, t, g, caps, 120.0, 900, joint).tolist()

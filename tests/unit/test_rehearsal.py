"""The rehearsal on a small production-schema index over real shard members."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loader_factories import index_rows, synthetic_shard, train_spm

from lf_asr.data.batch_planning import JointCap
from lf_asr.data.production_sampler import SamplerConfig
from lf_asr.data.schema import PRODUCTION_INDEX_SCHEMA
from maya_asr.data.rehearsal import render_table, run_rehearsal

LANGS = ["hi", "ta", "as"]


def skewed_index(tmp_path, n: int, seed: int = 0):
    """``n`` rows tiled over a few real shard members: languages skewed 80/15/5, gamma
    durations up to 30 s (the sampler's view), audio and transcripts from the members."""
    shards = []
    for i, lang in enumerate(LANGS):
        path = tmp_path / "shards" / lang / "shard-000000.tar"
        synthetic_shard(path, lang, 6, seed=i)
        shards.append(path)
    real = index_rows(shards)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(real), n)
    cols = {name: [real[k][name] for k in pick] for name in PRODUCTION_INDEX_SCHEMA.names}
    lang = rng.choice(len(LANGS), n, p=[0.8, 0.15, 0.05])
    cols["language"] = [LANGS[k] for k in lang]
    d = np.clip(rng.gamma(2.0, 3.5, n), 0.3, 30.0).astype(np.float32)
    cols["duration_s"] = d
    cols["num_tokens"] = np.maximum(1, d * rng.uniform(2, 5, n)).astype(np.int32)
    path = tmp_path / "index.parquet"
    pq.write_table(pa.table(cols, schema=PRODUCTION_INDEX_SCHEMA), path, row_group_size=1000)
    return path, [r["transcript"] for r in real]


@pytest.mark.slow
def test_rehearsal_reports_every_goal_and_resumes_exactly(tmp_path):
    index, texts = skewed_index(tmp_path, 6000)
    tok = train_spm(texts, tmp_path / "tok")
    config = SamplerConfig(
        bucket_batch_sizes="auto",
        bucket_edges=(0, 4, 8, 12, 16, 20, 40),
        joint=JointCap(8 * 10**8, 8, 1024, 5, fused_batch_size=4),
        accumulate_grad_batches=2,
    )
    result = run_rehearsal(
        index, LANGS, config, tok, ranks=2, coverage_epochs=(1, 3), loader_seconds=1.0,
        one_core=False, log=lambda m: None,
    )  # fmt: skip
    assert result["plan"]["rows"] == 6000 and result["plan"]["peak_rss_gib"] > 0
    assert result["plan"]["chapters"] > 1, "the small language wraps inside an epoch"
    q = result["plan_quality"]
    assert q["share_error_pp_max"] < 2.0
    assert q["buckets"][-1]["bucket_s"] == [20, 40] and q["buckets"][-1]["micro_batches"] > 0
    assert q["shortest_over_longest_bucket_audio"] > 0
    # Carried micro-batches (< ranks x accumulation per chapter) may trail their chapter.
    assert result["consumption"]["worst"] >= 0.95
    assert [r["identical"] for r in result["resume"]] == [True, True, True]
    cov1, cov3 = result["coverage"][1], result["coverage"][3]
    assert cov1["as"]["repeat_factor"] > 1 > cov1["hi"]["repeat_factor"]
    assert cov3["hi"]["distinct_fraction"] > cov1["hi"]["distinct_fraction"]
    loader = result["loader"]
    assert "error" not in loader, loader
    assert loader["clips"] > 0 and loader["bad_samples"] == 0
    table = render_table(result)
    assert "rank cost max/mean" in table and "coverage after  3 epoch(s)" in table
    assert "row lookup: not measured" in table
    # make rehearsal folds in the row-lookup and stage benchmarks' JSON (their own scripts).
    hot = {"mean_ms": 0.16, "arrow_peak_bytes_per_lookup": 0, "rss_anon_growth_mb": 1.0,
           "python_peak_bytes_per_lookup": 40960}  # fmt: skip
    result["row_lookup"] = {
        "lookups": 100,
        "sizes": {"200000": {"hot": hot, "random": hot}, "50000000": {"hot": hot, "random": hot}},
        "summary": {"hot_ratio_largest_vs_smallest": 1.0, "random_ratio_largest_vs_smallest": 1.0,
                    "max_arrow_peak_bytes_per_lookup": 0, "max_rss_anon_growth_mb": 1.0,
                    "max_python_peak_bytes_per_lookup": 40960},
    }  # fmt: skip
    result["prod_stages"] = {"target_rows": 50_000_000, "cores": 64, "projected_total_h": 1.5,
                             "stages": {"split": {"rows_per_s": 9000.0}}}  # fmt: skip
    table = render_table(result)
    assert "row lookup 50,000,000 vs 200,000: hot 1.0x" in table
    assert "0 Arrow B and 40.0 KB Python heap per lookup (goal <= 1 MB)" in table
    assert "split 9,000/s" in table and "projected for 50,000,000 rows on 64 cores: 1.5 h" in table

"""Pre-flight: the worst batch per bucket, and advice that names the cap to lower."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from maya_asr.training.preflight import (
    PreflightError,
    WorstBatch,
    is_oom,
    run_preflight,
    worst_batches,
)


def test_worst_batches_respect_every_cap():
    worst = worst_batches(
        [0, 4, 8, 20], max_batch_dur=120, max_batch_size=16, max_tokens_in_batch=400
    )
    assert [(w.bucket, w.batch_size, w.seconds, w.tokens) for w in worst] == [
        ((0, 4), 16, 4, 25),  # sample cap binds
        ((4, 8), 15, 8, 26),  # 120 s / 8 s
        ((8, 20), 6, 20, 66),  # 120 s / 20 s
    ]
    for w in worst:
        assert w.batch_size * w.seconds <= 120 and w.batch_size * w.tokens <= 400


def test_per_bucket_sample_caps():
    worst = worst_batches([0, 4, 8], 120, 16, 400, bucket_batch_sizes=[8, 4])
    assert [w.batch_size for w in worst] == [8, 4]


class _FakeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))


def _oom_above(limit_elements: int, seen: list):
    """A step that 'runs out of memory' when batch x samples x tokens exceeds a budget."""

    def step(batch):
        audio, _, tokens, _, _ = batch
        seen.append(audio.shape[0])
        if audio.shape[0] * audio.shape[1] * tokens.shape[1] > limit_elements:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80 GiB")

    return step


def test_preflight_passes_when_everything_fits():
    seen: list = []
    worst = [WorstBatch((0, 1), 4, 1.0, 10)]
    run_preflight(
        _FakeModel(), worst, max_batch_dur=4, max_tokens_in_batch=40, vocab_size=50,
        step_fn=_oom_above(10**12, seen), log=lambda _: None,
    )  # fmt: skip
    assert seen == [4]


def test_preflight_catches_a_too_large_cap_and_says_what_fits():
    worst = worst_batches([0, 1, 2], max_batch_dur=16, max_batch_size=16, max_tokens_in_batch=64)
    # bucket 1-2 s: 8 clips x 2 s x 8 tokens; allow 5 clips' worth.
    budget = 5 * 32000 * 8
    with pytest.raises(PreflightError) as err:
        run_preflight(
            _FakeModel(), worst, max_batch_dur=16, max_tokens_in_batch=64, vocab_size=50,
            step_fn=_oom_above(budget, []), log=lambda _: None,
        )  # fmt: skip
    message = str(err.value)
    assert "bucket 1-2 s" in message and "5 clips fit" in message
    assert "--max-batch-dur from 16 to 10" in message
    assert "--max-tokens-in-batch from 64 to 40" in message


def test_preflight_when_not_even_one_clip_fits():
    worst = [WorstBatch((0, 20), 4, 20.0, 100)]
    with pytest.raises(PreflightError, match="even one clip of 20 s"):
        run_preflight(
            _FakeModel(), worst, max_batch_dur=80, max_tokens_in_batch=400, vocab_size=50,
            step_fn=_oom_above(0, []), log=lambda _: None,
        )  # fmt: skip


def test_other_errors_are_not_mistaken_for_oom():
    def broken(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_preflight(
            _FakeModel(), [WorstBatch((0, 1), 2, 1.0, 3)], max_batch_dur=2,
            max_tokens_in_batch=6, vocab_size=10, step_fn=broken, log=lambda _: None,
        )  # fmt: skip
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_oom(ValueError("out of memory"))


def _smoke_model(tmp_path):
    """The smoke model (FastConformer with BatchNorm conv modules), built as training builds it."""
    from omegaconf import OmegaConf

    from maya_asr.models.tiny_tokenizer import SAMPLE_TEXTS, train_tiny_tokenizer
    from maya_asr.training.options import FLAG_KEYS, build_config
    from maya_asr.training.run import build_model

    repo = Path(__file__).parents[2]
    tok = train_tiny_tokenizer(list(SAMPLE_TEXTS), tmp_path / "tok", vocab_size=40)
    flags = {name: None for name in FLAG_KEYS} | {"train_parquet": "unused.parquet"}
    cfg = build_config(
        OmegaConf.load(repo / "configs" / "train" / "smoke.yaml"),
        flags,
        [f"model.tokenizer.dir={tok}", "model.encoder_freeze_steps=5"],
    )
    torch.manual_seed(0)
    model = build_model(cfg, trainer=None)
    model.train()
    model.set_encoder_frozen(True)  # as at step 0 of stage 1: BatchNorm in eval mode
    return model


def _state(model):
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {k: v.detach().clone() for k, v in tensors.items()}


def _run_real_preflight(model):
    worst = worst_batches([0, 1, 2], max_batch_dur=4, max_batch_size=2, max_tokens_in_batch=8)
    run_preflight(
        model, worst, max_batch_dur=4, max_tokens_in_batch=8,
        vocab_size=model.tokenizer.vocab_size, log=lambda _: None,
    )  # fmt: skip


def test_real_preflight_leaves_every_parameter_and_buffer_bit_identical(tmp_path):
    model = _smoke_model(tmp_path)
    bn_count = sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.encoder.modules())
    assert bn_count > 0  # the property under test needs BatchNorm
    modes = {n: m.training for n, m in model.named_modules()}
    before = _state(model)
    _run_real_preflight(model)
    after = _state(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    print(f"pre-flight: {len(changed)} of {len(before)} parameters/buffers differ")
    assert changed == []
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert model.encoder_frozen


def test_without_the_restore_preflight_would_move_batchnorm_statistics(tmp_path, monkeypatch):
    """Control: the real step does move running statistics, so the test above can fail."""
    import contextlib

    from maya_asr.training import preflight

    model = _smoke_model(tmp_path)
    before = _state(model)
    monkeypatch.setattr(preflight, "preserved_state", lambda m: contextlib.nullcontext())
    _run_real_preflight(model)
    after = _state(model)
    moved = {k: float((after[k] - before[k]).abs().max()) for k in before if "running_var" in k}
    print(f"without restore: largest running_var move {max(moved.values()):.3f}")
    assert max(moved.values()) > 0


def test_worst_batches_respect_the_joint_cap_the_sampler_enforces():
    from lf_asr.data.batch_planning import JointCap

    joint = JointCap(2 * 10**8, 8, 1024, 5, fused_batch_size=2)
    worst = worst_batches([0, 4, 40], 120, 64, 400, bucket_batch_sizes=[30, 3], joint=joint)
    for w in worst:
        assert joint.elements(w.batch_size, w.seconds, w.tokens) <= joint.max_elements
    free = worst_batches([0, 4, 40], 120, 64, 400, bucket_batch_sizes=[30, 3])
    assert worst[1].batch_size * worst[1].tokens < free[1].batch_size * free[1].tokens

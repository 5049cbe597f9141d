"""The vectorised CPU TDT loss equals NeMo's reference implementations (loss and gradients)."""

from __future__ import annotations

import pytest
import torch

from maya_asr.models.tdt_loss_cpu import TDTLossCPU, tdt_loss, unsupported_options

DURATIONS = [0, 1, 2, 3, 4]


def _random_batch(seed: int, B=3, T=7, U=4, V=6, K=5):
    g = torch.Generator().manual_seed(seed)
    acts = torch.randn(B, T, U + 1, V + 1 + K, generator=g) * 2
    labels = torch.randint(0, V, (B, U), generator=g)
    act_lens = torch.tensor([T] + [int(x) for x in torch.randint(2, T + 1, (B - 1,), generator=g)])
    label_lens = torch.tensor(
        [U] + [int(x) for x in torch.randint(0, U + 1, (B - 1,), generator=g)]
    )
    return acts, labels, act_lens, label_lens, V


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


@pytest.fixture
def no_cuda_calls(monkeypatch):
    """NeMo's reference calls ``.cuda()``; make it a no-op so it runs on the CPU."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)


@pytest.mark.parametrize(("seed", "sigma"), [(0, 0.0), (1, 0.02), (2, 0.05)])
def test_matches_nemo_tdt_reference(no_cuda_calls, seed, sigma):
    from nemo.collections.asr.losses.rnnt_pytorch import TDTLossPytorch

    acts, labels, act_lens, label_lens, V = _random_batch(seed)
    ref_acts = acts.clone().requires_grad_(True)
    ref = TDTLossPytorch(blank=V, durations=DURATIONS, reduction="none", sigma=sigma)
    expected = ref(acts=ref_acts, labels=labels, act_lens=act_lens, label_lens=label_lens)
    (expected_grad,) = torch.autograd.grad(expected.sum(), ref_acts)

    ours_acts = acts.clone().requires_grad_(True)
    got = tdt_loss(ours_acts, labels, act_lens, label_lens, V, DURATIONS, sigma=sigma)
    (got_grad,) = torch.autograd.grad(got.sum(), ours_acts)

    assert got.shape == expected.shape
    assert _rel_err(got.detach(), expected.detach()) < 1e-4
    assert _rel_err(got_grad, expected_grad) < 1e-4


def test_blank_index_zero_and_other_durations(no_cuda_calls):
    from nemo.collections.asr.losses.rnnt_pytorch import TDTLossPytorch

    durations = [0, 2, 3]
    acts, labels, act_lens, label_lens, _ = _random_batch(3, K=len(durations))
    labels = labels + 1  # blank 0 must never be a label
    expected = TDTLossPytorch(blank=0, durations=durations, reduction="none")(
        acts=acts, labels=labels, act_lens=act_lens, label_lens=label_lens
    )
    got = tdt_loss(acts, labels, act_lens, label_lens, 0, durations)
    assert _rel_err(got, expected) < 1e-4


def test_rnnt_mode_matches_nemo_rnnt_reference():
    """The omega branch is the plain RNN-T loss on the label logits."""
    from nemo.collections.asr.losses.rnnt_pytorch import RNNTLossPytorch

    acts, labels, act_lens, label_lens, V = _random_batch(4)
    label_acts = acts[..., : V + 1].clone().requires_grad_(True)
    expected = RNNTLossPytorch(blank=V, reduction="none")(
        acts=label_acts, labels=labels, act_lens=act_lens, label_lens=label_lens
    )
    (expected_grad,) = torch.autograd.grad(expected.sum(), label_acts)
    full = acts.clone().requires_grad_(True)
    got = tdt_loss(full, labels, act_lens, label_lens, V, DURATIONS, sigma=0.3, use_rnnt=True)
    (got_grad,) = torch.autograd.grad(got.sum(), full)
    assert _rel_err(got.detach(), expected.detach()) < 1e-4
    assert _rel_err(got_grad[..., : V + 1], expected_grad) < 1e-4
    assert torch.count_nonzero(got_grad[..., V + 1 :]) == 0  # durations get no gradient


def test_omega_one_always_uses_rnnt_and_reductions():
    acts, labels, act_lens, label_lens, V = _random_batch(5)
    rnnt = tdt_loss(acts, labels, act_lens, label_lens, V, DURATIONS, use_rnnt=True)
    per_utt = TDTLossCPU(V, DURATIONS, reduction=None, omega=1.0)(
        acts, labels, act_lens, label_lens
    )
    torch.testing.assert_close(per_utt, rnnt)
    tdt = tdt_loss(acts, labels, act_lens, label_lens, V, DURATIONS)
    summed = TDTLossCPU(V, DURATIONS, reduction="sum")(acts, labels, act_lens, label_lens)
    torch.testing.assert_close(summed, tdt.sum())
    with pytest.raises(ValueError, match="omega"):
        TDTLossCPU(V, DURATIONS, omega=1.5)


def test_loss_is_finite_for_impossible_alignments_and_grads_have_no_nan():
    # One frame cannot hold three labels ending in a blank that must move past it: the
    # likelihood is tiny but the loss and its gradient must stay finite.
    acts, labels, _, _, V = _random_batch(6)
    acts.requires_grad_(True)
    loss = tdt_loss(acts, labels, torch.tensor([1, 1, 1]), torch.tensor([3, 0, 1]), V, DURATIONS)
    (grad,) = torch.autograd.grad(loss.sum(), acts)
    assert torch.isfinite(grad).all()


def test_needs_a_positive_duration_and_names_unsupported_options():
    acts, labels, act_lens, label_lens, V = _random_batch(7, K=1)
    with pytest.raises(ValueError, match="positive duration"):
        tdt_loss(acts, labels, act_lens, label_lens, V, [0])
    assert unsupported_options(0.0, -1.0) == []
    assert unsupported_options(0.01, 2.0) == ["fastemit_lambda=0.01", "clamp=2.0"]


@pytest.mark.requires_cuda
def test_matches_nemo_numba_kernel_on_cuda():
    from nemo.collections.asr.parts.numba.rnnt_loss import TDTLossNumba

    acts, labels, act_lens, label_lens, V = _random_batch(8, B=4, T=12, U=6, V=20)
    numba = TDTLossNumba(blank=V, durations=DURATIONS, reduction="none", sigma=0.02)
    cuda_acts = acts.cuda().requires_grad_(True)
    expected = numba(cuda_acts, labels.cuda(), act_lens.cuda(), label_lens.cuda())
    (expected_grad,) = torch.autograd.grad(expected.sum(), cuda_acts)
    cpu_acts = acts.clone().requires_grad_(True)
    got = tdt_loss(cpu_acts, labels, act_lens, label_lens, V, DURATIONS, sigma=0.02)
    (got_grad,) = torch.autograd.grad(got.sum(), cpu_acts)
    assert _rel_err(got.detach(), expected.detach().cpu()) < 1e-4
    assert _rel_err(got_grad, expected_grad.cpu()) < 1e-3

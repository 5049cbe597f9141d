"""A vectorised pure-PyTorch TDT loss, used when the joint tensor lives on the CPU.

Why hand-written: NeMo 3.0's ``tdt`` loss is numba-CUDA only and its ``tdt_pytorch`` reference is
a Python loop over (batch, T, U) that also calls ``.cuda()``, ~11 s for a batch of 8 tiny
utterances. This module computes the same quantity (Token-and-Duration Transducer, Xu et al.
2023, eq. 7) with one Python iteration per frame, each vectorised over batch and label
positions. Autograd differentiates the small lattice; the full-size softmax over the joint has a
hand-written gradient (:class:`_ArcLogProbs`).

The recursion over the lattice (t frames, u emitted labels) is

    alpha(t, u) = logsumexp of
        alpha(t-d, u)   + blank(t-d, u)  + dur(t-d, u, d)       for d in durations, d > 0
        alpha(t-d, u-1) + label(t-d, u-1) + dur(t-d, u-1, d)    for d in durations

and log P(y|x) = logsumexp_{d > 0} alpha(T-d, U) + blank(T-d, U) + dur(T-d, U, d).
The d = 0 label arcs stay inside frame t, a linear recurrence along u,
``alpha(t, u) = logaddexp(c(t, u), alpha(t, u-1) + w(t, u-1))``, which we solve in closed form:
``alpha(t, :) = S + logcumsumexp(c - S)`` with ``S`` the running sum of ``w``. The small
lattice tensors are kept in float64 so this rearrangement loses no precision.

Supported options: ``blank``, ``durations`` (any list with at least one positive duration),
``sigma`` (logit under-normalisation) and ``omega`` (with probability omega a batch uses the plain
RNN-T loss, exactly like NeMo's numba kernel). Not supported: ``fastemit_lambda`` and ``clamp``
(gradient shaping inside NeMo's kernels); :func:`unsupported_options` names them so the model can
warn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

# A finite "minus infinity": logcumsumexp's backward turns -inf into NaN, a huge finite value
# underflows to an exact zero weight instead. float64 keeps sums of a few of them finite.
_NEG = -1e30


def unsupported_options(fastemit_lambda: float = 0.0, clamp: float = -1.0) -> list[str]:
    """Names of the requested TDT options this CPU loss ignores (empty when all are supported)."""
    names = []
    if fastemit_lambda and fastemit_lambda != 0.0:
        names.append(f"fastemit_lambda={fastemit_lambda}")
    if clamp is not None and clamp > 0:
        names.append(f"clamp={clamp}")
    return names


def transducer_log_likelihood(
    blank_out: torch.Tensor,
    emit_out: torch.Tensor,
    durations: Sequence[int],
    act_lens: torch.Tensor,
    label_lens: torch.Tensor,
) -> torch.Tensor:
    """log P(y|x) per utterance from the arc scores of a TDT lattice.

    Args:
        blank_out: (B, T, U+1, K) score of leaving (t, u) by a blank of duration ``durations[k]``
            (blank log-prob + duration log-prob).
        emit_out: (B, T, U, K) score of leaving (t, u) by emitting label u+1 with duration
            ``durations[k]``.
        durations: the K durations (frames advanced by each arc).
        act_lens: (B,) number of valid frames T_b.
        label_lens: (B,) number of labels U_b.

    Returns:
        (B,) log-likelihoods, same dtype as ``blank_out``.
    """
    B, T, U1, _ = blank_out.shape
    U = U1 - 1
    moves = [(k, d) for k, d in enumerate(durations) if d > 0]
    if not moves:
        raise ValueError(f"TDT durations {list(durations)} need at least one positive duration")
    zero_k = [k for k, d in enumerate(durations) if d == 0]
    neg_col = blank_out.new_full((B, 1), _NEG)
    first = torch.cat([blank_out.new_zeros(B, 1), blank_out.new_full((B, U), _NEG)], dim=1)

    # Per-frame views, (K, B, U+1) and (K, B, U): unbinding once keeps the backward cheap
    # (indexing the full tensor per step would materialise a full-size zero gradient each time).
    blank_t = blank_out.permute(1, 3, 0, 2).unbind(0)
    emit_t = emit_out.permute(1, 3, 0, 2).unbind(0)
    alphas: list[torch.Tensor] = []  # alphas[t]: (B, U+1)
    for t in range(T):
        if t == 0:
            c = first
        else:
            cands = []
            for k, d in moves:
                if t - d < 0:
                    continue
                prev = alphas[t - d]
                cands.append(prev + blank_t[t - d][k])
                if U > 0:
                    lab = prev[:, :U] + emit_t[t - d][k]
                    cands.append(torch.cat([neg_col, lab], dim=1))
            # No arc reaches frame t when every duration is longer than t.
            c = (
                torch.logsumexp(torch.stack(cands), dim=0)
                if cands
                else first.new_full((B, U1), _NEG)
            )
        if zero_k and U > 0:
            w = emit_t[t][zero_k[0]]  # (B, U): label arcs that stay in frame t
            s = torch.cat([blank_out.new_zeros(B, 1), torch.cumsum(w, dim=1)], dim=1)
            c = s + torch.logcumsumexp(c - s, dim=1)
        alphas.append(c)
    alpha = torch.stack(alphas, dim=1)  # (B, T, U+1)

    batch = torch.arange(B, device=blank_out.device)
    finals = []
    for k, d in moves:
        t_end = act_lens - d  # (B,) frame from which a blank of duration d ends the utterance
        valid = t_end >= 0
        t_idx = t_end.clamp(min=0)
        score = alpha[batch, t_idx, label_lens] + blank_out[batch, t_idx, label_lens, k]
        finals.append(torch.where(valid, score, torch.full_like(score, _NEG)))
    return torch.logsumexp(torch.stack(finals), dim=0)


class _ArcLogProbs(torch.autograd.Function):
    """Label log-softmax over the joint logits, reduced to the few arcs the lattice uses.

    forward: ``acts`` (B, T, U+1, V+1+K) -> blank log-prob (B, T, U+1), log-prob of the next
    label (B, T, U) and duration log-probs (B, T, U+1, K).

    Why hand-written: autograd's chain (slice, log_softmax, gather, index) materialises four
    full-size (B, T, U+1, V+1) gradient tensors, most of the loss's backward time on the CPU
    (fwd+bwd 0.70 s -> 0.34 s on a demo-sized joint). The gradient of log_softmax at the arcs
    is ``g - softmax * sum(g)``: one dense pass that writes straight into the gradient of
    ``acts``.
    """

    @staticmethod
    def forward(ctx, acts, idx, blank: int, K: int):
        B, T, U1, _ = acts.shape
        U = U1 - 1
        V1 = acts.shape[-1] - K
        logp = torch.log_softmax(acts[..., :V1], dim=-1)
        blank_lp = logp[..., blank]
        emit_lp = logp[:, :, :U, :].gather(-1, idx[:, None, :, None].expand(B, T, U, 1))
        dur_lp = torch.log_softmax(acts[..., V1:], dim=-1)
        ctx.save_for_backward(logp, dur_lp, idx)
        ctx.blank = blank
        return blank_lp, emit_lp.squeeze(-1), dur_lp

    @staticmethod
    def backward(ctx, g_blank, g_emit, g_dur):
        logp, dur_lp, idx = ctx.saved_tensors
        B, T, U1, V1 = logp.shape
        U = U1 - 1
        grad = logp.new_empty(B, T, U1, V1 + dur_lp.shape[-1])
        g_label = grad[..., :V1]
        g_blank = torch.zeros_like(logp[..., 0]) if g_blank is None else g_blank.to(logp.dtype)
        g_emit = logp.new_zeros(B, T, U) if g_emit is None else g_emit.to(logp.dtype)
        total = g_blank.clone()
        total[:, :, :U] += g_emit
        torch.exp(logp, out=g_label)
        g_label.mul_(-total[..., None])
        g_label[..., ctx.blank] += g_blank
        g_label[:, :, :U].scatter_add_(
            -1, idx[:, None, :, None].expand(B, T, U, 1), g_emit[..., None]
        )
        if g_dur is None:
            grad[..., V1:] = 0.0
        else:
            g_dur = g_dur.to(dur_lp.dtype)
            grad[..., V1:] = g_dur - dur_lp.exp() * g_dur.sum(-1, keepdim=True)
        return grad, None, None, None


def tdt_loss(
    acts: torch.Tensor,
    labels: torch.Tensor,
    act_lens: torch.Tensor,
    label_lens: torch.Tensor,
    blank: int,
    durations: Sequence[int],
    sigma: float = 0.0,
    use_rnnt: bool = False,
) -> torch.Tensor:
    """Per-utterance TDT negative log-likelihood, (B,), from raw joint logits.

    Args:
        acts: (B, T, U+1, V+1+K) joint logits: V labels + blank, then K duration logits.
        labels: (B, >=U) int targets (padding ignored past ``label_lens``).
        act_lens, label_lens: (B,) int lengths.
        blank: blank index among the V+1 label logits.
        durations: the K durations.
        sigma: logit under-normalisation subtracted from label log-probs.
        use_rnnt: compute the plain RNN-T loss on the label logits instead (omega sampling);
            durations are ignored and sigma is not applied, as in NeMo's kernel.
    """
    K = len(durations)
    U = acts.shape[2] - 1
    idx = labels[:, :U].long().clamp(min=0)
    blank_lp, emit_lp, dur_lp = _ArcLogProbs.apply(acts, idx, blank, K)
    lattice_dtype = torch.float64
    blank_lp = blank_lp.to(lattice_dtype)  # (B, T, U+1)
    emit_lp = emit_lp.to(lattice_dtype)  # (B, T, U)
    if use_rnnt:
        # Plain RNN-T: labels stay in the frame (d=0), blanks advance one frame (d=1).
        rnnt_durations = (0, 1)
        stay = acts.new_tensor([0.0, _NEG], dtype=lattice_dtype)
        move = acts.new_tensor([_NEG, 0.0], dtype=lattice_dtype)
        blank_out = blank_lp[..., None] + move
        emit_out = emit_lp[..., None] + stay
        logp = transducer_log_likelihood(blank_out, emit_out, rnnt_durations, act_lens, label_lens)
    else:
        dur_lp = dur_lp.to(lattice_dtype)
        blank_out = blank_lp[..., None] - sigma + dur_lp
        emit_out = emit_lp[..., None] - sigma + dur_lp[:, :, :U, :]
        logp = transducer_log_likelihood(blank_out, emit_out, durations, act_lens, label_lens)
    return (-logp).to(acts.dtype)


class TDTLossCPU(torch.nn.Module):
    """Drop-in for NeMo's per-utterance TDT loss modules (``TDTLossNumba``'s call signature).

    ``forward(acts, labels, act_lens, label_lens)`` returns per-utterance losses when
    ``reduction`` is None/'none' (how NeMo's ``RNNTLoss`` calls it) or their sum/mean.
    """

    def __init__(
        self,
        blank: int,
        durations: Sequence[int],
        reduction: str | None = "none",
        sigma: float = 0.0,
        omega: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= omega <= 1.0:
            raise ValueError(f"TDT omega {omega} must lie in [0, 1]")
        self.blank = blank
        self.durations = list(durations)
        self.reduction = reduction
        self.sigma = sigma
        self.omega = omega

    def forward(self, acts, labels, act_lens, label_lens):
        # Same sampling as NeMo's numba kernel: python's random, once per batch.
        use_rnnt = self.omega > 0 and random.uniform(0, 1) < self.omega
        losses = tdt_loss(
            acts, labels, act_lens.long(), label_lens.long(), self.blank, self.durations,
            sigma=self.sigma, use_rnnt=use_rnnt,
        )  # fmt: skip
        if self.reduction in (None, "none"):
            return losses
        if self.reduction == "sum":
            return losses.sum()
        if self.reduction == "mean":
            return (losses / label_lens.clamp(min=1)).mean()
        if self.reduction == "mean_batch":
            return losses.mean()
        raise ValueError(f"unknown reduction {self.reduction!r}; use none, sum, mean or mean_batch")

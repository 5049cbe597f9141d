"""Validation by language: WER and CER of both heads (TDT and CTC) on the validation manifest.

Scores use the evaluation tools' Indic-aware normalisation (``maya_asr.text.scoring``) and
corpus-level error counts (``maya_asr.inference.error_rates``), so a number logged in training is
the number ``scripts/evaluate.py`` prints for the same model and manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch

from maya_asr.inference.error_rates import ALL, Score, score_utterances

HEADS = ("tdt", "ctc")


def _texts(hyps) -> list[str]:
    if isinstance(hyps, tuple):  # older NeMo returned (best, all)
        hyps = hyps[0]
    return [h.text if hasattr(h, "text") else str(h) for h in hyps]


@torch.no_grad()
def decode_batch(model, batch) -> dict[str, list[str]]:
    """Greedy transcripts of a batch from both heads: {"tdt": [...], "ctc": [...]}."""
    audio, audio_lens, _, _, lang_ids = batch
    with model.languages_of_batch(lang_ids):
        encoded, encoded_len = model.forward(input_signal=audio, input_signal_length=audio_lens)
    tdt = model.decoding.rnnt_decoder_predictions_tensor(
        encoder_output=encoded, encoded_lengths=encoded_len
    )
    log_probs = model.ctc_decoder(encoder_output=encoded)  # (B, T, V+1)
    ctc = model.ctc_decoding.ctc_decoder_predictions_tensor(log_probs, decoder_lengths=encoded_len)
    return {"tdt": _texts(tdt), "ctc": _texts(ctc)}


def score_heads(
    references: Sequence[tuple[str, str]], hypotheses: dict[str, Sequence[str]]
) -> dict[str, dict[str, Score]]:
    """{head: {ALL | lang: Score}} for (language, reference) pairs and each head's hypotheses."""
    return {
        head: score_utterances(
            (lang, ref, hyp) for (lang, ref), hyp in zip(references, hyps, strict=True)
        )
        for head, hyps in hypotheses.items()
    }


def flat_metrics(scores: dict[str, dict[str, Score]]) -> dict[str, float]:
    """``langval/all/cer_tdt``, ``langval/hi/wer_ctc``, ... for loggers (NeMo's own validation
    already logs ``val_wer`` and ``val_wer_ctc`` over everything)."""
    out = {}
    for head, table in scores.items():
        for lang, score in table.items():
            for name in ("wer", "cer"):
                value = getattr(score, name)
                if value is not None:
                    out[f"langval/{lang}/{name}_{head}"] = float(value)
    return out


class LanguageValidation(pl.Callback):
    """Scores every validation batch's hypotheses of both heads and logs per-language WER/CER.

    ``batches`` are this rank's row lists in loader order (see ``validation_batches``); rows that
    repeat across ranks are scored once. The table of the last validation is written to
    ``<out_dir>/val-step<N>.json`` by rank 0.
    """

    def __init__(self, dataset, batches: list[list[int]], out_dir: str | Path | None = None):
        self.dataset = dataset
        self.batches = batches
        self.out_dir = Path(out_dir) if out_dir else None
        self._hyps: dict[int, dict[str, str]] = {}
        self.last_scores: dict[str, dict[str, Score]] | None = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._hyps = {}

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        # The Maya model keeps the hypotheses its validation step decoded already; decode here
        # only for a module that does not (one decode per batch either way).
        recorded = getattr(pl_module, "validation_hypotheses", None)
        if recorded is not None:
            decoded = {head: _texts(recorded[head]) for head in HEADS}
            pl_module.validation_hypotheses = None
        else:
            decoded = decode_batch(pl_module, batch)
        for i, row in enumerate(self.batches[batch_idx]):
            self._hyps[row] = {head: decoded[head][i] for head in HEADS}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        hyps = dict(self._hyps)
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            parts: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(parts, hyps)
            for part in parts:
                hyps.update(part)
        if not hyps:
            return
        rows = sorted(hyps)
        references = self.dataset.texts(rows)
        scores = score_heads(references, {h: [hyps[r][h] for r in rows] for h in HEADS})
        self.last_scores = scores
        metrics = flat_metrics(scores)
        for name, value in metrics.items():
            pl_module.log(
                name, value, rank_zero_only=True, prog_bar=name == f"langval/{ALL}/cer_tdt"
            )
        if self.out_dir and trainer.is_global_zero:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            table = {h: {lang: s.to_dict() for lang, s in t.items()} for h, t in scores.items()}
            path = self.out_dir / f"val-step{trainer.global_step}.json"
            path.write_text(json.dumps(table, indent=2, ensure_ascii=False))

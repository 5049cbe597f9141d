"""MayaHybridTDTCTCModel: NeMo's hybrid TDT+CTC BPE model plus a language embedding and schedules.

What we add to ``EncDecHybridRNNTCTCBPEModel``, each through a narrow hook:

* ``forward``: encoder output + per-language vector (:mod:`maya_asr.models.language`); the
  encoder runs under ``no_grad`` while frozen.
* ``training_step`` / ``validation_pass``: accept our 5-tuple batches (``lang_ids`` last) and
  NeMo's 4-tuples, then delegate to NeMo's step unchanged.
* ``on_train_batch_start``: CTC weight and encoder freeze from ``trainer.global_step``
  (optimizer steps), so both are right after a resume and under gradient accumulation.
* ``on_before_optimizer_step``: while frozen, drop the encoder's (zero) gradients so the optimizer
  neither moves nor decays the encoder.
* the TDT loss dispatches to NeMo's numba kernel on CUDA and to our vectorised loss on CPU.
* ``model.joint_bf16_on_cpu``: the joint's output layer trains in bfloat16 on a CPU with native
  bf16 matmul (:mod:`maya_asr.models.joint_precision`); same weights and keys.

DDP: parameters that do not reach the loss in a step (the encoder while frozen, the CTC head at
weight 0) get a zero-valued "anchor" term, so every parameter receives a gradient every step, the
reducer all-reduces them (zeros) and no unused-parameter error is raised; ranks stay identical.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from dataclasses import dataclass

import torch
from lightning.pytorch import Trainer
from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel
from omegaconf import DictConfig, OmegaConf, open_dict

from maya_asr.languages import LANGUAGES, get_language
from maya_asr.models import lr_schedule
from maya_asr.models.joint_precision import install_bf16_joint_output
from maya_asr.models.language import (
    LID_MODES,
    LanguageEmbedding,
    LanguageIdentifier,
    language_ids,
    lid_loss,
    split_language_batch,
)
from maya_asr.models.schedules import ctc_weight_at, encoder_frozen_at
from maya_asr.models.tdt_loss_cpu import TDTLossCPU, unsupported_options

TDT_IMPLS = ("auto", "numba", "torch")
lr_schedule.register_with_nemo()  # model.optim.sched.name: GroupCosine


@dataclass(frozen=True)
class MayaOptions:
    """Our additions to the NeMo model config, read from ``model.*`` keys."""

    languages: tuple[str, ...]  # language codes in id order (model.languages)
    language_dropout: float  # prob. of training an utterance without its language
    encoder_freeze_steps: int  # optimizer steps with the encoder frozen
    ctc_warmup_steps: int  # optimizer steps over which the CTC weight ramps 0 -> aux_ctc weight
    tdt_loss_impl: str  # auto: numba on CUDA, torch on CPU; or force one
    lid_loss_weight: float = 0.0  # > 0: a language-ID head supplies the vector when none is given
    lid_mode: str = "soft"  # soft: probability-weighted mix of vectors; hard: the argmax's vector
    joint_bf16_on_cpu: bool = False  # the joint's output layer in bf16 when training on the CPU

    @classmethod
    def from_config(cls, cfg: DictConfig) -> MayaOptions:
        opts = cls(
            languages=tuple(cfg.get("languages", None) or LANGUAGES),
            language_dropout=float(cfg.get("language_dropout", 0.0)),
            encoder_freeze_steps=int(cfg.get("encoder_freeze_steps", 0)),
            ctc_warmup_steps=int(cfg.get("ctc_warmup_steps", 0)),
            tdt_loss_impl=str(cfg.get("tdt_loss_impl", "auto")),
            lid_loss_weight=float(cfg.get("lid_loss_weight", 0.0)),
            lid_mode=str(cfg.get("lid_mode", "soft")),
            joint_bf16_on_cpu=bool(cfg.get("joint_bf16_on_cpu", False)),
        )
        opts.validate()
        return opts

    def validate(self) -> None:
        for code in self.languages:
            get_language(code)
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"model.languages {list(self.languages)} names a language twice")
        if not 0.0 <= self.language_dropout <= 1.0:
            raise ValueError(
                f"model.language_dropout={self.language_dropout}: use a value in [0, 1]"
            )
        if self.encoder_freeze_steps < 0 or self.ctc_warmup_steps < 0:
            raise ValueError("model.encoder_freeze_steps and model.ctc_warmup_steps must be >= 0")
        if self.tdt_loss_impl not in TDT_IMPLS:
            raise ValueError(f"model.tdt_loss_impl={self.tdt_loss_impl!r}: use one of {TDT_IMPLS}")
        if self.lid_loss_weight < 0:
            raise ValueError(f"model.lid_loss_weight={self.lid_loss_weight}: use 0 (off) or > 0")
        if self.lid_mode not in LID_MODES:
            raise ValueError(f"model.lid_mode={self.lid_mode!r}: use one of {LID_MODES}")


class DeviceTDTLoss(torch.nn.Module):
    """Per-utterance TDT loss: NeMo's numba kernel for CUDA tensors, ours for CPU tensors."""

    def __init__(self, numba_loss: torch.nn.Module, cpu_loss: TDTLossCPU, impl: str, ignored):
        super().__init__()
        self.numba_loss = numba_loss
        self.cpu_loss = cpu_loss
        self.impl = impl
        self.ignored = ignored  # options the CPU loss does not implement (warned once)
        self.reduction = None  # set and reset by NeMo's RNNTLoss around each call

    def forward(self, acts, labels, act_lens, label_lens):
        use_torch = self.impl == "torch" or (self.impl == "auto" and not acts.is_cuda)
        if not use_torch:
            self.numba_loss.reduction = self.reduction
            return self.numba_loss(
                acts=acts, labels=labels, act_lens=act_lens, label_lens=label_lens
            )
        if self.ignored:
            warnings.warn(
                f"the PyTorch TDT loss ignores {', '.join(self.ignored)}; NeMo's CUDA kernel "
                "honours them",
                stacklevel=2,
            )
            self.ignored = []
        self.cpu_loss.reduction = self.reduction
        return self.cpu_loss(acts, labels, act_lens, label_lens)


def zero_anchor(params) -> torch.Tensor:
    """0 * (one element of each parameter): gives every parameter an exact-zero gradient."""
    return sum(p.reshape(-1)[:1].sum() for p in params) * 0.0


class MayaHybridTDTCTCModel(EncDecHybridRNNTCTCBPEModel):
    """Hybrid TDT+CTC FastConformer with a per-language additive embedding. See module doc."""

    def __init__(self, cfg: DictConfig, trainer: Trainer | None = None):
        if not isinstance(cfg, DictConfig):
            cfg = OmegaConf.create(cfg)
        opts = MayaOptions.from_config(cfg)
        with open_dict(cfg):
            cfg.languages = list(opts.languages)
        super().__init__(cfg=cfg, trainer=trainer)
        self.maya = opts
        if not hasattr(self.encoder, "subsampling_factor"):
            # NeMo's timestamps read encoder.subsampling_factor; its RNNEncoder (the demo's
            # BiLSTM) keeps the value only in its config.
            default = inspect.signature(type(self.encoder).__init__).parameters.get(
                "subsampling_factor"
            )
            default = default.default if default is not None else 1  # RNNEncoder's is 4
            self.encoder.subsampling_factor = int(cfg.encoder.get("subsampling_factor", default))
        self.lang_embedding = LanguageEmbedding(
            len(opts.languages), self.encoder._feat_out, dropout=opts.language_dropout
        )
        self.lid_head = None  # language-ID head (model.lid_loss_weight > 0); see language.py
        if opts.lid_loss_weight > 0:
            self.lid_head = LanguageIdentifier(len(opts.languages), self.encoder._feat_out)
        self.lid_mode = opts.lid_mode  # may be switched at inference
        self._lid_logits: torch.Tensor | None = None  # (B, L) of the last forward, for the loss
        self.final_ctc_loss_weight = float(self.ctc_loss_weight)
        self._install_tdt_loss()
        if opts.joint_bf16_on_cpu:  # see joint_precision: ~1.7x a CPU training step
            install_bf16_joint_output(self.joint)
        self._lang_ids: torch.Tensor | None = None  # languages of the batch being processed
        self._transcribe_langs: torch.Tensor | None = None
        self._transcribe_cursor = 0
        self.encoder_frozen = False
        self.validation_hypotheses: dict[str, list] | None = None  # of the last validation batch

    # ------------------------------------------------------------------ loss
    def _install_tdt_loss(self) -> None:
        loss_cfg = self.cfg.get("loss", None) or {}
        if loss_cfg.get("loss_name", None) != "tdt":
            if self.maya.tdt_loss_impl != "auto":
                raise ValueError("model.tdt_loss_impl needs model.loss.loss_name: tdt")
            return
        kwargs = loss_cfg.get("tdt_kwargs", None) or {}
        numba_loss = self.loss._loss
        cpu_loss = TDTLossCPU(
            blank=self.loss._blank,
            durations=list(kwargs.get("durations", self.cfg.model_defaults.tdt_durations)),
            sigma=float(kwargs.get("sigma", 0.0)),
            omega=float(kwargs.get("omega", 0.0)),
        )
        ignored = unsupported_options(kwargs.get("fastemit_lambda", 0.0), kwargs.get("clamp", -1.0))
        self.loss._loss = DeviceTDTLoss(numba_loss, cpu_loss, self.maya.tdt_loss_impl, ignored)

    def change_vocabulary(self, *args, **kwargs):
        """NeMo's, then what its rebuild of the joint and loss drops: the TDT loss of
        ``model.loss`` (NeMo 3.0 puts a plain RNN-T loss in its place), our CPU dispatch of it
        and, with ``model.joint_bf16_on_cpu``, the joint's bf16 output layer."""
        from nemo.collections.asr.losses.rnnt import RNNTLoss

        super().change_vocabulary(*args, **kwargs)
        loss_name, loss_kwargs = self.extract_rnnt_loss_cfg(self.cfg.get("loss", None))
        num_classes = self.joint.num_classes_with_blank - 1
        if loss_name == "tdt":
            num_classes -= self.joint.num_extra_outputs
        self.loss = RNNTLoss(
            num_classes=num_classes,
            loss_name=loss_name,
            loss_kwargs=loss_kwargs,
            reduction=self.cfg.get("rnnt_reduction", "mean_batch"),
        )
        self._install_tdt_loss()
        if self.joint.fuse_loss_wer:
            self.joint.set_loss(self.loss)
        if self.maya.joint_bf16_on_cpu:
            install_bf16_joint_output(self.joint)

    # ------------------------------------------------------------------ optimizer
    def setup_optimizer_param_groups(self):
        """NeMo's param groups (the rest first, then ``model.optim_param_groups`` in order), each
        named under ``group_name`` so GroupCosine schedules the encoder by name."""
        super().setup_optimizer_param_groups()
        groups = self._optimizer_param_groups or []
        named = list((self.cfg.get("optim_param_groups", None) or {}).keys())
        rest = len(groups) - len(named)
        for i, group in enumerate(groups):
            group[lr_schedule.GROUP_KEY] = lr_schedule.HEADS if i < rest else named[i - rest]

    def setup_optimization(self, optim_config=None, optim_kwargs=None):
        """NeMo's; a GroupCosine schedule is told ``model.encoder_freeze_steps`` (one source)."""
        optim_config = OmegaConf.create(
            optim_config if optim_config is not None else self.cfg.optim
        )
        sched = optim_config.get("sched", None)
        if sched is not None and sched.get("name", None) == lr_schedule.NAME:
            with open_dict(sched):
                sched.encoder_freeze_steps = self.maya.encoder_freeze_steps
        return super().setup_optimization(optim_config, optim_kwargs)

    # ------------------------------------------------------------------ forward
    @contextlib.contextmanager
    def languages_of_batch(self, lang_ids: torch.Tensor | None):
        """Within the block, ``forward`` adds these languages' vectors (None: language-free)."""
        previous, self._lang_ids = self._lang_ids, lang_ids
        try:
            yield
        finally:
            self._lang_ids = previous

    def forward(
        self, input_signal=None, input_signal_length=None, processed_signal=None,
        processed_signal_length=None,
    ):  # fmt: skip
        """NeMo's encoder forward + language vector: encoded (B, D, T), lengths (B,)."""
        frozen = self.encoder_frozen and torch.is_grad_enabled()
        with torch.no_grad() if frozen else contextlib.nullcontext():
            encoded, encoded_len = super().forward(
                input_signal=input_signal,
                input_signal_length=input_signal_length,
                processed_signal=processed_signal,
                processed_signal_length=processed_signal_length,
            )
        return self.apply_language(encoded, self._lang_ids, encoded_len), encoded_len

    def apply_language(
        self,
        encoded: torch.Tensor,
        lang_ids: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encoder output (B, D, T) conditioned on ``lang_ids`` (B,) (None: language-free).

        The one place the language vector meets the encoder output: every path that runs the
        encoder (training, transcribe, export, streaming) goes through here. Rows without a
        language get the language-ID head's vector when the model has one (mean over the valid
        ``lengths`` frames, all frames when None), else nothing.
        """
        if lang_ids is None:
            lang_ids = torch.full((encoded.shape[0],), -1, dtype=torch.long, device=encoded.device)
        free = None
        self._lid_logits = None
        if self.lid_head is not None:
            logits = self.lid_head(encoded, lengths)
            self._lid_logits = logits
            if bool((lang_ids < 0).any()):
                # Only the cross-entropy trains the head, not the ASR loss through the mix.
                free = self.lang_embedding.mix(logits.detach(), self.lid_mode)
        return self.lang_embedding(encoded, lang_ids, free)

    def identify_language(self, audio: torch.Tensor, audio_lens: torch.Tensor) -> torch.Tensor:
        """Language-ID probabilities (B, L) of raw audio (B, N) (needs ``lid_loss_weight > 0``)."""
        if self.lid_head is None:
            raise ValueError("this model has no language-ID head: train with lid_loss_weight > 0")
        encoded, encoded_len = super().forward(input_signal=audio, input_signal_length=audio_lens)
        return torch.softmax(self.lid_head(encoded, encoded_len), dim=-1)

    @contextlib.contextmanager
    def _language_on_encoder_output(self, method: str, lang_ids: torch.Tensor | None):
        """Within the block, ``self.encoder.<method>`` returns its output (first element of a
        tuple) with the language vector applied. NeMo's export and cache-aware streaming call
        these encoder methods directly, not our ``forward``; wrapping the one call keeps NeMo's
        code paths whole instead of copying them."""
        original = getattr(self.encoder, method)

        def with_language(*args, **kwargs):
            out = original(*args, **kwargs)
            if isinstance(out, tuple):
                return (self.apply_language(out[0], lang_ids), *out[1:])
            return self.apply_language(out, lang_ids)

        setattr(self.encoder, method, with_language)
        try:
            yield
        finally:
            delattr(self.encoder, method)  # the class's method again

    def forward_for_export(
        self, audio_signal, length=None, cache_last_channel=None, cache_last_time=None,
        cache_last_channel_len=None,
    ):  # fmt: skip
        """NeMo's export forward (CTC head: encoder + CTC decoder in one graph) with the language
        of ``languages_of_batch``; a (1,) id adds one language's vector to every input."""
        method = "forward_for_export" if hasattr(self.encoder, "forward_for_export") else "forward"
        with self._language_on_encoder_output(method, self._lang_ids):
            return super().forward_for_export(
                audio_signal, length, cache_last_channel, cache_last_time, cache_last_channel_len
            )

    def export(self, output: str, *args, **kwargs):
        """NeMo's export. With a language set (``languages_of_batch``) only the one-graph CTC
        export carries it: the TDT export writes the encoder as a subnet of its own."""
        if self._lang_ids is not None and "encoder" in self.list_export_subnets():
            raise ValueError(
                "export with a language: the TDT export writes the encoder as its own subnet, "
                "which cannot add the language vector. Export the CTC head "
                "(model.change_decoding_strategy(decoder_type='ctc')), export without a language "
                "(the language-free path), or fold the language into the heads with "
                "maya_asr.models.stock_export"
            )
        return super().export(output, *args, **kwargs)

    def conformer_stream_step(self, *args, lang_ids: torch.Tensor | None = None, **kwargs):
        """NeMo's cache-aware streaming step with the language vector on every chunk's encoder
        output: ``lang_ids`` (B,), else those of ``languages_of_batch`` (None: language-free)."""
        lang_ids = lang_ids if lang_ids is not None else self._lang_ids
        with self._language_on_encoder_output("cache_aware_stream_step", lang_ids):
            return super().conformer_stream_step(*args, **kwargs)

    # ------------------------------------------------------------------ training
    def on_train_batch_start(self, batch, batch_idx, unused=0):
        out = super().on_train_batch_start(batch, batch_idx)
        step = self.trainer.global_step
        self.ctc_loss_weight = ctc_weight_at(
            step, self.maya.ctc_warmup_steps, self.final_ctc_loss_weight
        )
        self.set_encoder_frozen(encoder_frozen_at(step, self.maya.encoder_freeze_steps))
        return out

    def set_encoder_frozen(self, frozen: bool) -> None:
        """Freeze/unfreeze the encoder; frozen also keeps BatchNorm running statistics fixed."""
        self.encoder_frozen = frozen
        for module in self.encoder.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.train(self.training and not frozen)

    def training_step(self, batch, batch_nb):
        batch, true_ids = split_language_batch(batch)
        lang_ids = None if true_ids is None else self.lang_embedding.drop(true_ids)
        # Lightning puts the model in train mode after validation: re-apply the BN freeze.
        self.set_encoder_frozen(self.encoder_frozen)
        with self.languages_of_batch(lang_ids):
            output = super().training_step(batch, batch_nb)
        if self.lid_head is not None:
            output["loss"] = output["loss"] + self._lid_loss_term(true_ids)
        idle = []
        if self.encoder_frozen:
            idle += list(self.encoder.parameters())
        if self.ctc_loss_weight <= 0:
            idle += list(self.ctc_decoder.parameters())
        if idle:
            output["loss"] = output["loss"] + zero_anchor(idle)
        self.log("ctc_loss_weight", float(self.ctc_loss_weight))
        self.log("encoder_frozen", float(self.encoder_frozen))
        return output

    def _lid_loss_term(self, true_ids: torch.Tensor | None) -> torch.Tensor:
        """``lid_loss_weight`` x cross-entropy of the last forward's language-ID logits."""
        logits, self._lid_logits = self._lid_logits, None
        if true_ids is None:  # NeMo 4-tuples: no labels; keep the head in the graph for DDP
            return zero_anchor(self.lid_head.parameters())
        ce, accuracy = lid_loss(logits, true_ids)
        self.log("lid_loss", ce.detach())
        self.log("lid_acc", accuracy)
        return self.maya.lid_loss_weight * ce

    def on_before_optimizer_step(self, optimizer):
        super().on_before_optimizer_step(optimizer)
        if self.encoder_frozen:
            for p in self.encoder.parameters():
                p.grad = None  # AdamW skips params without grad: no move, no decay, no state

    def validation_pass(self, batch, batch_idx, dataloader_idx=0):
        """NeMo's validation pass; the greedy hypotheses its WER metrics decode (TDT and CTC)
        are kept in ``validation_hypotheses`` so per-language scoring needs no second decode."""
        batch, lang_ids = split_language_batch(batch)
        hyps: dict[str, list] = {"tdt": [], "ctc": []}
        with (
            self.languages_of_batch(lang_ids),
            _recording(self.decoding, "rnnt_decoder_predictions_tensor", hyps["tdt"]),
            _recording(self.ctc_decoding, "ctc_decoder_predictions_tensor", hyps["ctc"]),
        ):
            logs = super().validation_pass(batch, batch_idx, dataloader_idx)
        self.validation_hypotheses = hyps
        return logs

    # ------------------------------------------------------------------ inference
    def language_ids(self, language, count: int) -> torch.Tensor | None:
        """Ids for a code, a list of codes (None entries allowed) or None, for ``count`` inputs."""
        return language_ids(language, count, self.cfg.languages)

    @torch.no_grad()
    def transcribe(self, audio, batch_size: int = 4, *args, language=None, **kwargs):
        """NeMo's ``transcribe`` (same positional arguments) with an optional keyword-only
        language code, or one per input (per row of a manifest).

        Without a language the language-free path is used. Returns what NeMo returns
        (``Hypothesis`` objects in NeMo 3.0).
        """
        if language is not None:
            if isinstance(audio, torch.utils.data.DataLoader):
                raise ValueError("pass lang_ids inside the DataLoader's batches, not `language`")
            self._transcribe_langs = self.language_ids(language, _input_count(audio))
        self._transcribe_cursor = 0
        try:
            return super().transcribe(audio, batch_size, *args, **kwargs)
        finally:
            self._transcribe_langs = None

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        """NeMo's predict step on our batches: the 5th element is ``lang_ids`` (lf_asr schema),
        not a sample id; the ids returned are the rows' positions in the batch."""
        batch, lang_ids = split_language_batch(batch)
        rows = torch.arange(batch[0].shape[0])
        with self.languages_of_batch(lang_ids):
            return super().predict_step((*batch, rows), batch_idx, dataloader_idx)

    def _transcribe_forward(self, batch, trcfg):
        lang_ids = None
        if self._transcribe_langs is not None:
            # NeMo keeps input order when batching transcribe inputs, so a cursor suffices.
            n = batch[0].shape[0]
            lang_ids = self._transcribe_langs[self._transcribe_cursor : self._transcribe_cursor + n]
            self._transcribe_cursor += n
        elif len(batch) == 5:
            lang_ids = batch[4]
        with self.languages_of_batch(lang_ids):
            return super()._transcribe_forward(batch, trcfg)


def _input_count(audio) -> int:
    """How many utterances ``transcribe(audio)`` decodes: a manifest (.json/.jsonl path, as NeMo
    detects it) counts its rows, read with NeMo's manifest reader."""
    items = [audio] if isinstance(audio, str) else audio
    single = isinstance(items, (list, tuple)) and len(items) == 1 and isinstance(items[0], str)
    if single and items[0].endswith((".json", ".jsonl")):
        from nemo.collections.asr.parts.utils import manifest_utils

        return len(manifest_utils.read_manifest(items[0]))
    return len(items) if isinstance(items, (list, tuple)) else 1


@contextlib.contextmanager
def _recording(obj, method: str, sink: list):
    """Within the block, every call of ``obj.<method>`` appends its hypotheses to ``sink`` (in
    call order: NeMo's fused joint decodes a batch in sub-batches). NeMo's WER metrics decode
    but do not return hypotheses; recording them saves decoding every validation batch twice."""
    original = getattr(obj, method)

    def recorded(*args, **kwargs):
        out = original(*args, **kwargs)
        hyps = out[0] if isinstance(out, tuple) else out  # older NeMo: (best, all)
        sink.extend(hyps)
        return out

    setattr(obj, method, recorded)
    try:
        yield
    finally:
        delattr(obj, method)

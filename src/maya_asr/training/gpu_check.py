"""`make gpu-check`: what the first lent H200 must show before a 5-day run is launched.

Four sections, each through the code the production run uses (options -> ``build_trainer`` ->
``build_model`` -> Lightning ``fit``, ``_preflight``, ``transcribe_inputs``):

``smoke``      the smoke config for a few steps: on CUDA with NeMo's numba TDT loss in
               bf16-mixed (the path CPU tests never take);
``preflight``  the production model (1.1B FastConformer, 32K vocabulary; the Parakeet encoder
               when its file is there, random init otherwise) through pre-flight at the worst
               batch of every duration bucket, with each bucket's time and peak memory;
``train``      training steps at the production caps (one worst batch per bucket, in turn; one
               micro-batch per optimizer step, encoder trainable, constant LR): step time, peak
               memory, audio seconds per second and MFU from the analytic FLOP count of
               :mod:`maya_asr.models.flops` (3 x forward);
``rtfx``       TDT and CTC inference RTFx of that model at batch 128 (fp32, as transcribe runs).

Without a GPU the same sections run the ``cpu-tiny`` plan (tiny encoder and vocabulary, 2-3 steps,
small batches) so the command itself is tested here; its figures are not H200 figures and the
report says so. A section that raises is reported failed with its error and the others still run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lf_asr.data.schema import TARGET_SAMPLE_RATE

log = logging.getLogger("maya_asr.gpu_check")

SECTIONS = ("smoke", "preflight", "train", "rtfx")
# Dense BF16 tensor-core peak per GPU, FLOP/s (NVIDIA datasheets). Longest name matched first.
PEAK_BF16_FLOPS = {
    "H200 NVL": 835e12,
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H100": 989e12,
    "A100": 312e12,
}
FLOP_CONVENTION = (
    "analytic matmul+conv FLOPs of one forward (2 per multiply-add; mel filterbank, subsampling, "
    "Conformer layers, LSTM predictor, fused TDT joint, CTC head; maya_asr.models.flops) x 3 for "
    "forward+backward"
)


@dataclass(frozen=True)
class CheckPlan:
    """Sizes of one gpu-check run: the H200 plan or the CPU tiny variant."""

    variant: str  # "h200" (production sizes) or "cpu-tiny"
    smoke_steps: int  # optimizer steps of the smoke section
    smoke_batch: tuple[int, float, int]  # smoke batch: clips, seconds per clip, tokens per clip
    smoke_vocab: int  # tokenizer size of the smoke model
    prod_vocab: int  # tokenizer size of the production model
    prod_overrides: tuple[str, ...] = ()  # dotlist on the production config (tiny sizes)
    train_steps: int = 50  # optimizer steps timed at the production caps
    warmup_steps: int = 5  # first steps left out of the step-time median (kernel warm-up)
    rtfx_batch: int = 128  # clips per transcribe call
    rtfx_clip_s: float = 10.0  # seconds per clip
    rtfx_batches: int = 2  # timed batches per decoder (after one untimed)

    @property
    def is_tiny(self) -> bool:
        return self.variant != "h200"


H200 = CheckPlan("h200", smoke_steps=10, smoke_batch=(8, 8.0, 60), smoke_vocab=256,
                 prod_vocab=32000)  # fmt: skip
CPU_TINY = CheckPlan(
    "cpu-tiny", smoke_steps=2, smoke_batch=(2, 2.0, 8), smoke_vocab=64, prod_vocab=128,
    prod_overrides=(
        "model.encoder.n_layers=2", "model.encoder.d_model=64", "model.encoder.n_heads=2",
        "model.encoder.subsampling_conv_channels=16", "model.model_defaults.pred_hidden=64",
        "model.model_defaults.joint_hidden=64", "data.bucket_edges=[0,2,4]",
        "data.max_batch_dur=8", "data.max_batch_size=4", "data.max_tokens_in_batch=48",
    ),
    train_steps=3, warmup_steps=1, rtfx_batch=4, rtfx_clip_s=2.0, rtfx_batches=1,
)  # fmt: skip
TINY_BANNER = (
    "CPU TINY VARIANT: no CUDA GPU, so gpu-check ran a 2-layer x 64 encoder, a 128-piece "
    "vocabulary, 2-3 steps and small batches on the CPU. These figures are NOT H200 figures; "
    "they only show that the command works."
)


class Skip(Exception):
    """Raised by a section that cannot run here; the message is the reason."""


def peak_bf16_flops(device_name: str) -> float | None:
    """Dense BF16 peak FLOP/s of a known GPU name, else None."""
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):
        if key in device_name:
            return PEAK_BF16_FLOPS[key]
    return None


# ---------------------------------------------------------------- memory


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux: "5" resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gib(device: torch.device) -> tuple[float, str]:
    """(peak GiB since the last reset, what was measured)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "torch.cuda.max_memory_allocated"
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20, "process peak RSS (VmHWM)"
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process peak RSS"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- the training path


class StepTimer:
    """Lightning callback: wall time, audio seconds, batch shape and loss of every step."""

    def __init__(self, device: torch.device, every: int = 10):
        import lightning.pytorch as pl

        timer = self

        class _Callback(pl.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                _sync(device)
                timer._t0 = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                _sync(device)
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                audio, audio_lens, tokens = batch[0], batch[1], batch[2]
                timer.steps.append(
                    {
                        "seconds": time.perf_counter() - timer._t0,
                        "audio_s": float(audio_lens.sum()) / TARGET_SAMPLE_RATE,
                        "shape": (int(audio.shape[0]), int(audio.shape[1]), int(tokens.shape[1])),
                        "loss": float(loss),
                    }
                )
                if len(timer.steps) % every == 0:
                    log.info("step %d: %.3f s", len(timer.steps), timer.steps[-1]["seconds"])

        self.callback = _Callback()
        self.steps: list[dict] = []
        self._t0 = 0.0


class Cycle(torch.utils.data.Dataset):
    """``length`` items cycling through ``batches`` (used with ``batch_size=None``)."""

    def __init__(self, batches: list, length: int):
        self.batches, self.length = batches, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        return self.batches[i % len(self.batches)]


def job_config(config_path: Path, run_dir: Path, tokenizer_dir: Path, steps: int, dotlist=()):
    """A run config as ``scripts/train_prod.py`` merges it, set up for a check: one device, one
    micro-batch per optimizer step, encoder trainable from step 1, CTC at full weight, constant
    LR (the schedule is not what is measured), no checkpoints, no validation."""
    from omegaconf import OmegaConf, open_dict

    from maya_asr.training.options import build_config

    flags = dict(
        max_steps=steps, grad_accum=1, devices=1, num_nodes=1, freeze_encoder_steps=0,
        ctc_warmup_steps=0, run_dir=str(run_dir), val_every=10**6, checkpoint_every=10**6,
        num_workers=0, log_every=50,
    )  # fmt: skip
    cfg = build_config(OmegaConf.load(config_path), flags, list(dotlist))
    with open_dict(cfg):
        cfg.model.tokenizer.dir = str(tokenizer_dir)
        cfg.model.optim.pop("sched", None)
        cfg.trainer.enable_checkpointing = False
        cfg.trainer.enable_progress_bar = False
        cfg.data.val_manifest = None
    return cfg


def synthetic_batch(clips: int, seconds: float, tokens: int, vocab: int, n_langs: int) -> tuple:
    """Random audio and tokens as the loader's 5-tuple (languages cycle over the model's)."""
    from maya_asr.training.preflight import WorstBatch
    from maya_asr.training.preflight import synthetic_batch as worst_batch_of

    wb = WorstBatch((0.0, seconds), clips, seconds, tokens)
    audio, audio_lens, toks, tok_lens, _ = worst_batch_of(wb, clips, vocab, "cpu")
    return audio, audio_lens, toks, tok_lens, torch.arange(clips) % n_langs


def _tokenizer(work: Path, vocab: int) -> Path:
    from maya_asr.models.tiny_tokenizer import tokenizer_with_vocab

    return tokenizer_with_vocab(work / f"tokenizer_{vocab}", vocab)


# ---------------------------------------------------------------- sections


@dataclass
class CheckContext:
    """What the sections share: the plan, paths, the device and the production model."""

    plan: CheckPlan
    repo: Path
    work: Path
    device: torch.device
    peak_flops: float | None  # FLOP/s the MFU is taken against (None: MFU not reported)
    _prod: dict = field(default_factory=dict)

    def prod(self) -> dict:
        """The production job (config, trainer, model, step timer), built once and shared."""
        if "error" in self._prod:
            raise RuntimeError(f"the production model could not be built: {self._prod['error']}")
        if not self._prod:
            try:
                self._prod.update(self._build_prod())
            except Exception as e:
                self._prod["error"] = f"{type(e).__name__}: {e}"
                raise
        return self._prod

    def _build_prod(self) -> dict:
        from omegaconf import open_dict

        from maya_asr.training.run import build_model, build_trainer

        plan = self.plan
        run_dir = self.work / "prod"
        cfg = job_config(
            self.repo / "configs/train/stage1_prod_8xh200.yaml", run_dir,
            _tokenizer(self.work, plan.prod_vocab), plan.train_steps, plan.prod_overrides,
        )  # fmt: skip
        encoder_from = "random init (tiny sizes)"
        with open_dict(cfg):
            if not plan.is_tiny:
                pretrained = [
                    p
                    for p in (
                        cfg.run.get("pretrained_encoder"),
                        "pretrained/parakeet-tdt-1.1b.nemo",
                    )
                    if p and (self.repo / p).is_file()
                ]
                cfg.run.pretrained_encoder = str(self.repo / pretrained[0]) if pretrained else None
                encoder_from = pretrained[0] if pretrained else "random init (no Parakeet file)"
            else:
                cfg.run.pretrained_encoder = None
        timer = StepTimer(self.device)
        t0 = time.perf_counter()
        trainer = build_trainer(cfg, run_dir, [timer.callback])
        model = build_model(cfg, trainer)
        return {
            "cfg": cfg, "trainer": trainer, "model": model, "timer": timer,
            "build_s": time.perf_counter() - t0, "encoder_from": encoder_from,
            "parameters": sum(p.numel() for p in model.parameters()),
        }  # fmt: skip


def _tdt_loss_counter(model) -> dict[str, int]:
    """Counts calls of NeMo's numba TDT loss and of our PyTorch one (forward hooks)."""
    calls = {"numba": 0, "torch": 0}
    for module in model.loss.modules():
        kind = type(module).__name__
        key = "numba" if "Numba" in kind else "torch" if kind == "TDTLossCPU" else None
        if key:
            module.register_forward_hook(lambda *_, key=key: calls.__setitem__(key, calls[key] + 1))
    return calls


def section_smoke(ctx: CheckContext) -> dict:
    from omegaconf import open_dict

    from maya_asr.training.run import build_model, build_trainer

    plan, cuda = ctx.plan, ctx.device.type == "cuda"
    impl = "numba" if cuda else "torch"
    cfg = job_config(
        ctx.repo / "configs/train/smoke.yaml", ctx.work / "smoke",
        _tokenizer(ctx.work, plan.smoke_vocab), plan.smoke_steps,
    )  # fmt: skip
    with open_dict(cfg):
        cfg.model.tdt_loss_impl = impl
        cfg.trainer.precision = "bf16-mixed" if cuda else "32-true"
    timer = StepTimer(ctx.device)
    trainer = build_trainer(cfg, ctx.work / "smoke", [timer.callback])
    model = build_model(cfg, trainer)
    calls = _tdt_loss_counter(model)
    clips, seconds, tokens = plan.smoke_batch
    batch = synthetic_batch(clips, seconds, tokens, plan.smoke_vocab, len(cfg.model.languages))
    reset_peak_memory(ctx.device)
    trainer.fit(model, torch.utils.data.DataLoader(Cycle([batch], plan.smoke_steps), None))
    peak, kind = peak_memory_gib(ctx.device)
    losses = [s["loss"] for s in timer.steps]
    if len(losses) != plan.smoke_steps or not all(math.isfinite(x) for x in losses):
        raise RuntimeError(
            f"smoke training losses not finite over {plan.smoke_steps} steps: {losses}"
        )
    if calls[impl] == 0:
        raise RuntimeError(f"the {impl} TDT loss never ran (calls: {calls})")
    return {
        "steps": len(losses), "precision": str(trainer.precision), "tdt_loss_calls": calls,
        "batch": {"clips": clips, "seconds": seconds, "tokens": tokens},
        "losses": [round(x, 4) for x in losses],
        "step_s_median": statistics.median(s["seconds"] for s in timer.steps),
        "peak_mem_gib": round(peak, 3), "peak_mem_kind": kind,
        "summary": f"{len(losses)} steps, {trainer.precision}, TDT loss {impl}, "
        f"loss {losses[0]:.2f}->{losses[-1]:.2f}",
    }  # fmt: skip


class _PreflightLines(logging.Handler):
    """Catches pre-flight's per-bucket log lines; notes time and peak memory at each."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.rows, self._t0 = device, [], time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith("pre-flight ok"):
            return
        peak, _ = peak_memory_gib(self.device)
        now = time.perf_counter()
        self.rows.append(
            {"bucket": message.split(": ", 1)[1], "seconds": round(now - self._t0, 3),
             "peak_mem_gib": round(peak, 3)}
        )  # fmt: skip
        reset_peak_memory(self.device)
        self._t0 = time.perf_counter()


def section_preflight(ctx: CheckContext) -> dict:
    from maya_asr.training import run

    job = ctx.prod()
    model, trainer = job["model"], job["trainer"]
    model.to(trainer.strategy.root_device)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    catcher = _PreflightLines(ctx.device)
    run.log.addHandler(catcher)
    level = run.log.level
    run.log.setLevel(logging.INFO)  # the per-bucket lines are INFO, whatever the root level
    reset_peak_memory(ctx.device)
    try:
        run._preflight(job["cfg"], model, trainer)  # the production run's own call (no index:
        # the caps' data-free upper bound, see run.preflight_batches)
    finally:
        run.log.removeHandler(catcher)
        run.log.setLevel(level)
    expected = len(run.preflight_batches(job["cfg"], model.tokenizer.vocab_size))
    if len(catcher.rows) != expected:
        raise RuntimeError(
            f"pre-flight logged 'pre-flight ok' for {len(catcher.rows)} of {expected} buckets: "
            "its per-bucket lines did not reach gpu-check's handler on maya_asr.training.run.log "
            "(a logging filter or a changed message in training/preflight.py)"
        )
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    del before
    if changed:
        log.warning("pre-flight changed %d parameters/buffers: %s", len(changed), changed[:5])
    worst = max((r["peak_mem_gib"] for r in catcher.rows), default=0.0)
    return {
        "model_build_s": round(job["build_s"], 1), "parameters": job["parameters"],
        "vocab_size": model.tokenizer.vocab_size, "encoder_from": job["encoder_from"],
        "precision": str(trainer.precision), "buckets": catcher.rows,
        "state_changed_by_preflight": changed,
        "summary": f"{len(catcher.rows)} buckets ok, {job['parameters'] / 1e6:.1f}M params, "
        f"worst peak {worst:.2f} GiB" + (f"; CHANGED {len(changed)} tensors" if changed else ""),
    }  # fmt: skip


def section_train(ctx: CheckContext) -> dict:
    from maya_asr.models.flops import ModelDims, forward_flops
    from maya_asr.training.run import preflight_batches

    job = ctx.prod()
    cfg, model, trainer, timer = job["cfg"], job["model"], job["trainer"], job["timer"]
    vocab = model.tokenizer.vocab_size
    worst = preflight_batches(cfg, vocab)  # pre-flight's batches: the caps' worst per bucket
    langs = len(model.cfg.languages)
    batches = [synthetic_batch(w.batch_size, w.seconds, w.tokens, vocab, langs) for w in worst]
    reset_peak_memory(ctx.device)
    trainer.fit(model, torch.utils.data.DataLoader(Cycle(batches, ctx.plan.train_steps), None))
    peak, kind = peak_memory_gib(ctx.device)
    steps = timer.steps
    if len(steps) != ctx.plan.train_steps:
        raise RuntimeError(f"trained {len(steps)} of {ctx.plan.train_steps} steps")
    timed = steps[ctx.plan.warmup_steps :] or steps
    dims = ModelDims.from_config(model.cfg, vocab)
    flops = [3 * forward_flops(dims, *s["shape"])["total"] for s in timed]
    seconds = sum(s["seconds"] for s in timed)
    achieved = sum(flops) / seconds
    mfu = achieved / ctx.peak_flops if ctx.peak_flops else None
    audio_per_s = sum(s["audio_s"] for s in timed) / seconds
    bad = [s["loss"] for s in steps if not math.isfinite(s["loss"])]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(steps)} training losses are not finite")
    return {
        "steps": len(steps), "timed_steps": len(timed), "precision": str(trainer.precision),
        "batches": [w.describe() for w in worst],
        "step_s_median": round(statistics.median(s["seconds"] for s in timed), 4),
        "step_s_mean": round(seconds / len(timed), 4),
        "step_s_first": round(steps[0]["seconds"], 3),
        "audio_s_per_s": round(audio_per_s, 2),
        "peak_mem_gib": round(peak, 3), "peak_mem_kind": kind,
        "train_flops_per_step_mean": int(sum(flops) / len(flops)),
        "achieved_tflops": round(achieved / 1e12, 3),
        "peak_tflops": ctx.peak_flops / 1e12 if ctx.peak_flops else None,
        "mfu": round(mfu, 4) if mfu is not None else None,
        "flop_convention": FLOP_CONVENTION,
        "losses": [round(s["loss"], 4) for s in steps],
        "summary": f"{audio_per_s:.0f} audio-s/s, step {statistics.median(s['seconds'] for s in timed):.3f} s, "  # noqa: E501
        f"peak {peak:.2f} GiB, {achieved / 1e12:.2f} TFLOP/s"
        + (f", MFU {mfu:.1%}" if mfu is not None else ", MFU n/a (no peak for this device)"),
    }  # fmt: skip


def section_rtfx(ctx: CheckContext) -> dict:
    import numpy as np
    import soundfile as sf

    from maya_asr.inference.inputs import files_to_inputs
    from maya_asr.inference.transcriber import RunStats, TranscribeOptions, transcribe_inputs

    plan = ctx.plan
    model = ctx.prod()["model"].to(ctx.device).eval()
    folder = ctx.work / "rtfx_audio"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = int(plan.rtfx_clip_s * TARGET_SAMPLE_RATE)
    paths = []
    for i in range(plan.rtfx_batch * (plan.rtfx_batches + 1)):
        paths.append(folder / f"clip{i:04d}.wav")
        sf.write(paths[-1], (rng.standard_normal(n) * 0.1).astype(np.float32), TARGET_SAMPLE_RATE)
    inputs = files_to_inputs(paths)
    warm, timed = inputs[: plan.rtfx_batch], inputs[plan.rtfx_batch :]
    out = {"batch": plan.rtfx_batch, "clip_s": plan.rtfx_clip_s, "clips": len(timed),
           "precision": "fp32", "decoders": {}}  # fmt: skip
    for decoder in ("tdt", "ctc"):
        options = TranscribeOptions(decoder=decoder, batch_size=plan.rtfx_batch)
        list(transcribe_inputs(model, warm, options, progress=False))  # untimed warm-up
        stats = RunStats()
        for _ in transcribe_inputs(model, timed, options, stats=stats, progress=False):
            pass
        out["decoders"][decoder] = {
            "rtfx": round(stats.rtfx, 1), "audio_s": round(stats.audio_seconds, 1),
            "model_s": round(stats.model_seconds, 3),
        }  # fmt: skip
    r = out["decoders"]
    out["summary"] = (
        f"batch {plan.rtfx_batch}: TDT RTFx {r['tdt']['rtfx']:.0f}, CTC {r['ctc']['rtfx']:.0f}"
    )
    return out


SECTION_FUNCS: dict[str, Callable[[CheckContext], dict]] = {
    "smoke": section_smoke, "preflight": section_preflight, "train": section_train,
    "rtfx": section_rtfx,
}  # fmt: skip
SECTION_TITLES = {
    "smoke": "(a) smoke config, CUDA, numba TDT, bf16-mixed",
    "preflight": "(b) production model through pre-flight, every bucket",
    "train": "(c) training steps at the production caps",
    "rtfx": "(d) TDT and CTC inference RTFx",
}


# ---------------------------------------------------------------- runner


def run_sections(
    funcs: dict[str, Callable[[CheckContext], dict]], ctx, selected: set[str] | None = None
) -> dict[str, dict]:
    """Run each section in order; one that raises is recorded as failed and the rest still run.

    Returns {name: {"status": "ran" | "skipped" | "failed", "seconds", ...}}.
    """
    results: dict[str, dict] = {}
    for name, func in funcs.items():
        if selected is not None and name not in selected:
            results[name] = {"status": "skipped", "reason": "not selected (--sections)"}
            continue
        log.info("gpu-check: %s", SECTION_TITLES.get(name, name))
        t0 = time.perf_counter()
        try:
            result = {"status": "ran", **func(ctx)}
        except Skip as e:
            result = {"status": "skipped", "reason": str(e)}
        except Exception as e:  # a failed section is reported; the others still run
            log.error("gpu-check: section %s failed:\n%s", name, traceback.format_exc())
            result = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
            if isinstance(ctx, CheckContext) and ctx.device.type == "cuda":
                torch.cuda.empty_cache()
        result["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = result
    return results


def format_table(report: dict) -> str:
    """The one printed table: a row per section, status and its key figures."""
    lines = []
    if report["variant"] != "h200":
        lines += ["!" * 100, "!! " + TINY_BANNER, "!" * 100]
    lines.append(f"gpu-check ({report['variant']}) on {report['device_name']}, "
                 f"total {report['total_s']:.0f} s")  # fmt: skip
    lines.append(f"{'section':<11}{'status':<9}{'s':>7}  figures")
    for name, r in report["sections"].items():
        status = r["status"]
        detail = r.get("summary") or r.get("reason") or r.get("error", "")
        lines.append(f"{name:<11}{status:<9}{r.get('seconds', 0):>7.1f}  {detail[:200]}")
    lines.append(f"FLOPs: {FLOP_CONVENTION}.")
    if report["variant"] != "h200":
        lines.append("!! CPU TINY VARIANT: not H200 figures.")
    return "\n".join(lines)


def run_gpu_check(
    plan: CheckPlan,
    repo: Path,
    device: torch.device,
    selected: set[str] | None = None,
    work_dir: Path | None = None,
    peak_tflops: float | None = None,
) -> dict:
    """Run the check; returns the JSON report (``report["ok"]``: no section failed)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops * 1e12 if peak_tflops else peak_bf16_flops(name)
    if plan.is_tiny:
        log.warning(TINY_BANNER)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=work_dir) as tmp:
        ctx = CheckContext(plan, Path(repo), Path(tmp), device, peak)
        sections = run_sections(SECTION_FUNCS, ctx, selected)
    report = {
        "variant": plan.variant,
        "warning": TINY_BANNER if plan.is_tiny else None,
        "device_name": name,
        "torch": torch.__version__,
        "peak_tflops": peak / 1e12 if peak else None,
        "flop_convention": FLOP_CONVENTION,
        "plan": {k: v for k, v in plan.__dict__.items()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "total_s": round(time.perf_counter() - t0, 1),
        "sections": sections,
    }
    report["ok"] = not any(r["status"] == "failed" for r in sections.values())
    return report

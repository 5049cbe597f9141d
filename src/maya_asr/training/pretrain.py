"""Pretrain the demo's FastConformer encoder with CTC on the pretraining corpus (2 CPU cores).

The run is built to be stopped at any time and still leave something usable: every
``checkpoint_every`` steps it overwrites

* ``<out_dir>/encoder.pt``   the encoder state dict (``load_pretrained_encoder`` reads it) of the
  checkpoint with the lowest held-out CER so far (a copy of ``<work_dir>/best_encoder.pt``),
* ``<out_dir>/curve.csv``    step, loss, learning rate, wall time, audio seen, held-out loss/CER,
* ``<out_dir>/summary.json`` the latest figures, the step encoder.pt holds, the run's settings,
* ``<work_dir>/last.pt``     model, optimizer, schedule and curve, so the same command resumes
  (refused when the corpus, tokenizer, held-out set or augmentation differ),

each written to a temporary name and renamed. ``<out_dir>/encoder.yaml`` is the encoder's config
block for the demo config to copy.

Speed choices (see ``pretrained/demo/README.md``): a small BPE vocabulary for the throwaway head
(characters do not fit CTC at 80-ms frames: espeak-ng speaks ~11 characters a second, the encoder
emits 12.5 frames), SpecAugment optional and off (it delays leaving the blank plateau), a long
linear warm-up, batches of up to ``batch_seconds`` of padded audio from duration buckets, the
whole corpus decoded once into memory.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from maya_asr.models.pretrain_ctc import EncoderDims
from maya_asr.training.cpu_memory import keep_freed_memory

CURVE_FIELDS = (
    "step", "epoch", "loss", "lr", "wall_s", "audio_hours", "val_loss", "val_cer",
)  # fmt: skip
SAMPLE_RATE = 16000
FRAME_SAMPLES = 160  # the preprocessor's 10-ms hop


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run (the command-line flags of scripts/pretrain_demo_encoder.py)."""

    corpus_root: Path  # <lang>/shard-*.tar of scripts/make_pretrain_corpus.py
    out_dir: Path = Path("pretrained/demo")  # encoder.pt, encoder.yaml, curve.csv, summary.json
    work_dir: Path = Path("artifacts/demo_pretrain/run")  # last.pt (resume) and the tokenizer
    dims: EncoderDims = field(default_factory=EncoderDims)
    vocab_size: int = 256  # BPE pieces of the pretraining head (blank comes on top)
    max_steps: int = 8000  # optimizer steps of the cosine schedule (stop any time before)
    batch_seconds: float = 80.0  # padded audio per batch (longest x count)
    max_batch_size: int = 48  # utterances per batch
    lr: float = 2e-3  # peak AdamW LR
    weight_decay: float = 1e-3
    warmup_steps: int = 200  # linear warm-up (attention models diverge without one)
    min_lr_ratio: float = 0.05  # the cosine ends at lr x this
    grad_clip: float = 1.0
    checkpoint_every: int = 250  # steps between held-out scores and curve.csv/last.pt writes
    log_every: int = 25  # steps averaged into one curve row
    val_utterances: int = 60  # held out from the corpus (not speakers: voices are shared)
    # SpecAugment (NeMo's SpectrogramAugmentation) while training; off by default: with 2 x 27-bin
    # and 5 x 5% masks an 18-h run was still on the blank plateau at step 500 (held-out CER
    # 0.94) where the unaugmented 3-h run had left it at step 250 (0.40 at 500)
    freq_masks: int = 0
    time_masks: int = 0
    seed: int = 0
    threads: int = 2  # torch intra-op threads

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_root", Path(self.corpus_root))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "work_dir", Path(self.work_dir))
        problems = []
        for name in (
            "vocab_size",
            "max_steps",
            "max_batch_size",
            "checkpoint_every",
            "log_every",
            "val_utterances",  # encoder.pt is chosen by held-out CER
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("freq_masks", "time_masks"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 (off) or more, got {getattr(self, name)}")
        if self.batch_seconds <= 0 or self.lr <= 0:
            problems.append("batch_seconds and lr must be positive")
        if not 0 <= self.warmup_steps <= self.max_steps:
            problems.append(
                f"warmup_steps={self.warmup_steps} must lie in [0, max_steps={self.max_steps}]"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def settings(self) -> dict:
        d = asdict(self)
        for key in ("corpus_root", "out_dir", "work_dir"):
            d[key] = str(d[key])
        return d


@dataclass
class Utterance:
    key: str
    lang: str
    text: str
    audio: np.ndarray  # int16 samples at SAMPLE_RATE: (num_samples,)
    tokens: list[int] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


# ---------------------------------------------------------------- pure pieces


def encoder_frames(num_samples: int, subsampling_factor: int) -> int:
    """Encoder frames of an utterance: NeMo's feature length (samples // hop), then each stride-2
    convolution of dw_striding halves it, rounding up (``subsampling_factor`` x fewer)."""
    frames = num_samples // FRAME_SAMPLES
    for _ in range(subsampling_factor.bit_length() - 1):
        frames = (frames - 1) // 2 + 1
    return frames


def ctc_feasible(tokens: list[int], frames: int) -> bool:
    """CTC can align ``tokens`` in ``frames``: one frame per token plus a blank between repeats."""
    repeats = sum(1 for a, b in itertools.pairwise(tokens) if a == b)
    return 0 < len(tokens) + repeats <= frames


def plan_batches(
    seconds: list[float], batch_seconds: float, max_batch_size: int, rng: random.Random
) -> list[list[int]]:
    """One epoch of batches (indices into ``seconds``): similar durations together, each batch's
    padded audio (longest x count) at most ``batch_seconds``, batches in random order.

    Every index appears exactly once; an utterance longer than ``batch_seconds`` forms its own.
    """
    order = sorted(range(len(seconds)), key=lambda i: (seconds[i], rng.random()))
    batches, current = [], []
    for i in order:  # ascending: the newcomer is the longest of its batch
        if current and (
            seconds[i] * (len(current) + 1) > batch_seconds or len(current) >= max_batch_size
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(utts: list[Utterance]) -> tuple[torch.Tensor, ...]:
    """audio (B, S) float32 in [-1, 1], audio_len (B,), targets (B, U), target_len (B,)."""
    audio_len = torch.tensor([len(u.audio) for u in utts])
    target_len = torch.tensor([len(u.tokens) for u in utts])
    audio = torch.zeros(len(utts), int(audio_len.max()))
    targets = torch.zeros(len(utts), int(target_len.max()), dtype=torch.long)
    for row, u in enumerate(utts):
        audio[row, : len(u.audio)] = torch.from_numpy(u.audio.astype(np.float32) / 32768.0)
        targets[row, : len(u.tokens)] = torch.tensor(u.tokens)
    return audio, audio_len, targets, target_len


def split_heldout(utts: list[Utterance], n: int, seed: int) -> tuple[list[Utterance], list]:
    """(train, held-out): ``n`` utterances spread over the languages, chosen by ``seed``."""
    rng = random.Random(f"heldout:{seed}")
    by_lang: dict[str, list[int]] = {}
    for i, u in enumerate(utts):
        by_lang.setdefault(u.lang, []).append(i)
    held: set[int] = set()
    langs = sorted(by_lang)
    for j, lang in enumerate(langs):
        share = n // len(langs) + (1 if j < n % len(langs) else 0)
        held.update(rng.sample(by_lang[lang], min(share, len(by_lang[lang]))))
    train = [u for i, u in enumerate(utts) if i not in held]
    return train, [u for i, u in enumerate(utts) if i in held]


def train_step(model, optimizer, scheduler, batch, grad_clip: float) -> float:
    """One optimizer step of CTC on ``batch`` (see :func:`collate`); returns nats per token."""
    from maya_asr.models.pretrain_ctc import ctc_loss_per_token

    audio, audio_len, targets, target_len = batch
    model.train()
    log_probs, enc_len = model(audio, audio_len)
    loss = ctc_loss_per_token(log_probs, enc_len, targets, target_len, model.blank)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return float(loss.detach())


# ---------------------------------------------------------------- I/O pieces


def load_corpus(root: Path) -> list[Utterance]:
    """Every utterance of the raw shards under ``root``, decoded to 16-kHz int16 in memory."""
    from maya_asr.inference.inputs import read_audio, shard_inputs

    utts = []
    for item in shard_inputs(root):
        audio = read_audio(item, SAMPLE_RATE)
        pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
        utts.append(Utterance(item.row["key"], item.row["lang"], item.row["text"], pcm))
    if not utts:
        raise FileNotFoundError(f"no utterances under {root}; run `make demo-pretrain-corpus`")
    return utts


def train_tokenizer(texts: list[str], folder: Path, vocab_size: int):
    """A SentencePiece BPE model of ``texts`` in ``folder`` (reused when already there)."""
    import sentencepiece as spm

    model = folder / "tokenizer.model"
    info = folder / "tokenizer.json"
    wanted = {"vocab_size": vocab_size, "texts": len(texts), "chars": sum(map(len, texts))}
    if not (model.exists() and info.exists() and json.loads(info.read_text()) == wanted):
        folder.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_prefix=str(folder / "tokenizer"),
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            hard_vocab_limit=False,  # a tiny corpus gets fewer pieces instead of an error
            minloglevel=2,
        )
        info.write_text(json.dumps(wanted))
    return spm.SentencePieceProcessor(model_file=str(model))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_encoder_yaml(dims: EncoderDims, path: Path) -> None:
    """The ``model.encoder`` block the demo config copies (feat_in interpolated as in configs/)."""
    from omegaconf import OmegaConf

    from maya_asr.models.pretrain_ctc import encoder_block

    block = encoder_block(dims)
    block["feat_in"] = "${model.preprocessor.features}"
    header = (
        "# model.encoder of the demo's pretrained FastConformer (pretrained/demo/encoder.pt);\n"
        "# copy it under `model:` of a training config. Dropout may be changed freely.\n"
    )
    _atomic_text(header + OmegaConf.to_yaml({"encoder": block}), path)


def _write_curve(rows: list[dict], path: Path) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_text(buf.getvalue(), path)


@torch.no_grad()
def evaluate(model, utts: list[Utterance], sp, batch_seconds: float) -> tuple[float, float]:
    """(CTC nats per token, greedy CER) on ``utts``."""
    from maya_asr.inference.error_rates import char_errors
    from maya_asr.models.pretrain_ctc import ctc_loss_per_token, greedy_decode

    model.eval()
    nll, tokens, errors, chars = 0.0, 0, 0, 0
    seconds = [u.seconds for u in utts]
    for idx in plan_batches(seconds, batch_seconds, 64, random.Random(0)):
        batch = [utts[i] for i in idx]
        audio, audio_len, targets, target_len = collate(batch)
        log_probs, enc_len = model(audio, audio_len)
        loss = ctc_loss_per_token(log_probs, enc_len, targets, target_len, model.blank)
        nll += float(loss) * int(target_len.sum())
        tokens += int(target_len.sum())
        for u, ids in zip(batch, greedy_decode(log_probs, enc_len, model.blank), strict=True):
            counts = char_errors(u.text, sp.decode(ids))
            errors += counts.errors
            chars += counts.reference_length
    return nll / max(tokens, 1), errors / max(chars, 1)


# ---------------------------------------------------------------- the run


def run_pretraining(cfg: PretrainConfig, stop_after: int | None = None, log=print) -> dict:
    """Train (or resume) until ``cfg.max_steps`` (or ``stop_after`` more steps); return summary."""
    from maya_asr.models.lr_schedule import GroupCosine
    from maya_asr.models.pretrain_ctc import CTCPretrainModel, spec_augment_block

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    keep_freed_memory()  # a CPU job: no mmap/munmap per large tensor; process-wide (cpu_memory)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    cfg.work_dir.mkdir(parents=True, exist_ok=True)

    t_load = time.perf_counter()
    utts = load_corpus(cfg.corpus_root)
    sp = train_tokenizer([u.text for u in utts], cfg.work_dir / "tokenizer", cfg.vocab_size)
    kept = []
    for u in utts:
        u.tokens = sp.encode(u.text)
        if ctc_feasible(u.tokens, encoder_frames(len(u.audio), cfg.dims.subsampling_factor)):
            kept.append(u)
    train, heldout = split_heldout(kept, cfg.val_utterances, cfg.seed)
    hours = sum(u.seconds for u in train) / 3600
    log(
        f"corpus: {len(utts)} utterances, {len(utts) - len(kept)} dropped (CTC-infeasible), "
        f"{len(train)} train ({hours:.2f} h), {len(heldout)} held out; "
        f"loaded in {time.perf_counter() - t_load:.0f} s"
    )

    # what a resumed run must share with the one that wrote last.pt: the same corpus and tokenizer
    # (piece ids), the same held-out set (best-CER comparisons) and the same augmentation
    fingerprint = {
        "dims": asdict(cfg.dims),
        "vocab": len(sp),
        "corpus": {"utterances": len(utts), "chars": sum(len(u.text) for u in utts)},
        "heldout": sorted(u.key for u in heldout),
        "spec_augment": [cfg.freq_masks, cfg.time_masks],
    }
    model = CTCPretrainModel(
        cfg.dims,
        vocab_size=len(sp),
        spec_augment=spec_augment_block(cfg.freq_masks, cfg.time_masks),
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
    )
    scheduler = GroupCosine(
        optimizer,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup_steps,
        min_lr_ratio=cfg.min_lr_ratio,
        encoder_rewarmup_steps=0,
    )
    n_params = sum(p.numel() for p in model.encoder.parameters())
    state = {"step": 0, "epoch": 0, "wall_s": 0.0, "audio_s": 0.0, "curve": []}
    last = cfg.work_dir / "last.pt"
    if last.exists():
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        theirs = ckpt.get("fingerprint")
        if theirs != fingerprint:
            differ = [k for k in fingerprint if not theirs or theirs.get(k) != fingerprint[k]]
            raise ValueError(
                f"{last} belongs to another run (differs in: {', '.join(differ)}); delete "
                f"{cfg.work_dir} (or pass another --work-dir) to start a new run"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        log(f"resumed from {last} at step {state['step']}")
    write_encoder_yaml(cfg.dims, cfg.out_dir / "encoder.yaml")
    log(f"encoder: {n_params / 1e6:.2f} M parameters, {asdict(cfg.dims)}")

    def checkpoint() -> dict:
        t0 = time.perf_counter()
        val_loss, val_cer = evaluate(model, heldout, sp, cfg.batch_seconds)
        state["wall_s"] += time.perf_counter() - t0  # wall time counts evaluation too
        if state["curve"] and state["curve"][-1]["step"] == state["step"]:
            state["curve"][-1].update(val_loss=round(val_loss, 4), val_cer=round(val_cer, 4))
        # encoder.pt is the checkpoint with the lowest held-out CER so far: a long run on a few
        # hours of speech overfits, and the fine-tune should start from its best encoder
        best = state.get("best")
        improved = best is None or val_cer < best["raw_cer"]
        if improved:
            best = state["best"] = {
                "step": state["step"],
                "val_loss": round(val_loss, 4),
                "val_cer": round(val_cer, 4),
                "raw_cer": val_cer,
            }
            _atomic_save(model.encoder.state_dict(), cfg.work_dir / "best_encoder.pt")
        summary = {
            "step": state["step"],
            "epoch": state["epoch"],
            "train_loss": state["curve"][-1]["loss"] if state["curve"] else None,
            "val_loss": round(val_loss, 4),
            "val_cer": round(val_cer, 4),
            "encoder_pt": {k: v for k, v in best.items() if k != "raw_cer"},  # its step
            "wall_s": round(state["wall_s"], 1),
            "audio_hours_seen": round(state["audio_s"] / 3600, 3),
            "train_hours": round(hours, 3),
            "train_utterances": len(train),
            "heldout_utterances": len(heldout),
            "encoder_parameters": n_params,
            "settings": cfg.settings(),
        }
        # copied at every checkpoint, so encoder.pt and summary.json always agree (also after
        # a crash between writes or a resume into another --out-dir)
        tmp = cfg.out_dir / "encoder.pt.tmp"
        shutil.copyfile(cfg.work_dir / "best_encoder.pt", tmp)
        os.replace(tmp, cfg.out_dir / "encoder.pt")
        _write_curve(state["curve"], cfg.out_dir / "curve.csv")
        _atomic_text(json.dumps(summary, indent=2) + "\n", cfg.out_dir / "summary.json")
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state,
                "settings": cfg.settings(),
                "vocab": len(sp),
                "fingerprint": fingerprint,
            },
            last,
        )
        kept = "saved as encoder.pt" if improved else f"encoder.pt stays at step {best['step']}"
        log(f"checkpoint @ {state['step']}: val loss {val_loss:.3f}, CER {val_cer:.3f} ({kept})")
        return summary

    end = cfg.max_steps if stop_after is None else min(cfg.max_steps, state["step"] + stop_after)
    seconds = [u.seconds for u in train]
    losses: list[float] = []
    summary = None
    while state["step"] < end:
        rng = random.Random(f"{cfg.seed}:{state['epoch']}")
        batches = plan_batches(seconds, cfg.batch_seconds, cfg.max_batch_size, rng)
        skip = state.get("batch_in_epoch", 0)  # a resumed epoch continues where it stopped
        for b, idx in enumerate(batches[skip:], start=skip):
            t0 = time.perf_counter()
            batch = [train[i] for i in idx]
            losses.append(train_step(model, optimizer, scheduler, collate(batch), cfg.grad_clip))
            state["wall_s"] += time.perf_counter() - t0
            state["audio_s"] += sum(u.seconds for u in batch)
            state["step"] += 1
            state["batch_in_epoch"] = b + 1
            if state["step"] % cfg.log_every == 0 or state["step"] == end:
                row = {
                    "step": state["step"],
                    "epoch": state["epoch"],
                    "loss": round(sum(losses) / len(losses), 4),
                    "lr": f"{scheduler.get_last_lr()[0]:.3e}",
                    "wall_s": round(state["wall_s"], 1),
                    "audio_hours": round(state["audio_s"] / 3600, 3),
                    "val_loss": "",
                    "val_cer": "",
                }
                state["curve"].append(row)
                log(
                    f"step {row['step']} epoch {row['epoch']} loss {row['loss']:.3f} "
                    f"lr {row['lr']} wall {row['wall_s']:.0f} s"
                )
                losses = []
            if state["step"] % cfg.checkpoint_every == 0 or state["step"] == end:
                summary = checkpoint()
            if state["step"] >= end:
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    return summary if summary is not None else checkpoint()


# ---------------------------------------------------------------- the README's progress section

README_START = "<!-- progress:start (written by pretrain_demo_encoder.py --update-readme) -->"
README_END = "<!-- progress:end -->"


def progress_markdown(out_dir: Path, rows_shown: int = 12) -> str:
    """The run's figures so far (summary.json) and a thinned curve (curve.csv), as Markdown."""
    summary = json.loads((Path(out_dir) / "summary.json").read_text())
    with open(Path(out_dir) / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    checkpoints = [r for r in rows if r["val_loss"]]
    stride = max(1, -(-len(checkpoints) // rows_shown))
    shown = checkpoints[::stride]
    if checkpoints and shown[-1] is not checkpoints[-1]:
        shown.append(checkpoints[-1])
    lines = [
        f"As of step **{summary['step']}** (epoch {summary['epoch']}): train CTC loss "
        f"{summary['train_loss']} nats/token, held-out loss {summary['val_loss']}, held-out "
        f"greedy CER {summary['val_cer']:.3f}; {summary['wall_s'] / 3600:.2f} h of wall time, "
        f"{summary['audio_hours_seen']:.1f} h of audio seen "
        f"({summary['audio_hours_seen'] / summary['train_hours']:.1f} epochs of "
        f"{summary['train_hours']:.2f} h).",
        "",
        *(
            [
                f"`encoder.pt` holds step **{best['step']}**, the lowest held-out CER so far "
                f"({best['val_cer']:.3f}; held-out loss {best['val_loss']}).",
                "",
            ]
            if (best := summary.get("encoder_pt"))
            else []
        ),
        "| step | train loss | held-out loss | held-out CER | LR | wall (h) | audio seen (h) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in shown:
        lines.append(
            f"| {r['step']} | {r['loss']} | {r['val_loss']} | {float(r['val_cer']):.3f} | "
            f"{r['lr']} | {float(r['wall_s']) / 3600:.2f} | {r['audio_hours']} |"
        )
    return "\n".join(lines)


def update_readme(readme: Path, out_dir: Path) -> None:
    """Replace the text between the progress markers of ``readme`` by :func:`progress_markdown`."""
    text = Path(readme).read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} lacks the lines {README_START!r} ... {README_END!r}")
    body = progress_markdown(out_dir)
    new = text[: start + len(README_START)] + "\n" + body + "\n" + text[end:]
    _atomic_text(new, Path(readme))

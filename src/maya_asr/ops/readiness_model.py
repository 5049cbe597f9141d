"""Readiness checks of the training config and the artifacts it points at.

Fields are read by their NeMo names with OmegaConf (no NeMo import):

- ``model.tokenizer.dir``; ``model.encoder.d_model`` and ``n_layers``;
- vocabulary: ``model.joint.num_classes``, ``model.decoder.vocab_size`` and
  ``model.aux_ctc.decoder.num_classes`` when set must equal the tokenizer's piece count
  (``tokenizer.model`` via SentencePiece, else the lines of ``vocab.txt``); unset or -1 means NeMo
  fills them from the tokenizer;
- durations: ``model.model_defaults.tdt_durations`` sorted, unique, starting 0 and including 1,
  and equal to ``model.loss.tdt_kwargs.durations``, ``model.decoding.durations``, with
  ``num_tdt_durations`` / ``model.joint.num_extra_outputs`` equal to its length;
- caps: every batch cap found anywhere in the config (``max_batch_dur``, ``max_batch_size``,
  ``max_tokens_in_batch``, ``max_duration``, ``batch_size``...) positive, ``min_duration <
  max_duration``, ``bucket_edges`` increasing, ``max_duration`` <= 40 s (attention memory);
- joint cap: ``data.max_joint_elements`` set for a TDT model (else WARN: the joint is uncapped),
  stated in elements and fp32 gigabytes with what it counts (``JointCap``: B + min(B,
  ``model.joint.fused_batch_size``) rows), and large enough for one clip of the last bucket edge
  with a dense transcript (``DENSE_TOKENS_PER_S``), else those clips could never be batched;
- artifacts: the parquet index has every column of ``lf_asr.data.schema.INDEX_COLUMNS`` with a
  type castable to the contract, and rows (metadata only), the val manifest is JSON lines with a
  duration, the pretrained encoder's
  tensor shapes (d_model, layer count) match the config (loaded with ``mmap=True``).
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

from maya_asr.ops.readiness import FAIL, PASS, WARN, CheckResult, ReadinessConfig

_ABSENT = object()
CAP_KEYS = (
    "max_batch_dur",
    "max_batch_size",
    "max_tokens_in_batch",
    "max_duration",
    "batch_size",
    "max_tokens",
    "min_duration",
)
MAX_UTTERANCE_S = 40.0
DENSE_TOKENS_PER_S = 5.0  # BPE tokens per second of a dense transcript (upper end of our mix)


def _get(conf, key: str):
    """Resolved value at ``key``; ``_ABSENT`` when absent or ``???``; raises on a bad ``${}``."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(conf, key, default=_ABSENT, throw_on_missing=False)
    if value is not _ABSENT and OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_config(path: Path, facts: dict) -> list[CheckResult]:
    """Schema, durations, caps; stores the loaded config in ``facts['conf']`` for later checks."""
    path = Path(path)
    if not path.is_file():
        return [
            CheckResult(
                "config",
                "file",
                FAIL,
                f"{path} not found",
                "write the training config there or pass --config PATH",
            )
        ]
    from omegaconf import OmegaConf

    try:
        conf = OmegaConf.load(path)
    except Exception as exc:
        return [
            CheckResult(
                "config", "file", FAIL, f"{path} does not parse: {exc}", "fix the YAML syntax"
            )
        ]
    facts["conf"] = conf
    rows = [CheckResult("config", "file", PASS, f"{path} parses")]
    rows.append(_check_schema(conf, facts))
    rows.append(_check_durations(conf))
    rows.append(_check_caps(conf))
    return rows


def _check_schema(conf, facts: dict) -> CheckResult:
    problems, found = [], []
    for key in ("model.tokenizer.dir", "model.encoder.d_model", "model.encoder.n_layers"):
        try:
            value = _get(conf, key)
        except Exception as exc:
            problems.append(f"{key}: {exc.__class__.__name__}")
            continue
        if value is _ABSENT or value is None:
            problems.append(f"{key} is not set")
        elif key != "model.tokenizer.dir" and (not isinstance(value, int) or value <= 0):
            problems.append(f"{key}={value!r} is not a positive integer")
        else:
            facts[key] = value
            found.append(f"{key.rsplit('.', 1)[-1]}={value}")
    if problems:
        return CheckResult(
            "config",
            "schema",
            FAIL,
            "; ".join(problems),
            "set these NeMo fields in the training config",
        )
    return CheckResult("config", "schema", PASS, ", ".join(found))


def _check_durations(conf) -> CheckResult:
    try:
        durations = _get(conf, "model.model_defaults.tdt_durations")
        if durations is _ABSENT:
            return CheckResult(
                "config",
                "tdt durations",
                FAIL,
                "model.model_defaults.tdt_durations is not set",
                "set it, e.g. [0, 1, 2, 3, 4]",
            )
        problems = []
        if (
            not isinstance(durations, list)
            or not durations
            or not all(isinstance(d, int) and d >= 0 for d in durations)
        ):
            problems.append(f"tdt_durations={durations!r} must be a list of ints >= 0")
        else:
            if durations != sorted(set(durations)):
                problems.append(f"tdt_durations={durations} must be increasing and unique")
            if durations[0] != 0 or 1 not in durations:
                problems.append(f"tdt_durations={durations} must start 0 and include 1")
            for key in ("model.loss.tdt_kwargs.durations", "model.decoding.durations"):
                other = _get(conf, key)
                if other is not _ABSENT and other != durations:
                    problems.append(f"{key}={other} differs from tdt_durations")
            for key in ("model.model_defaults.num_tdt_durations", "model.joint.num_extra_outputs"):
                other = _get(conf, key)
                if other is not _ABSENT and other != len(durations):
                    problems.append(f"{key}={other} but there are {len(durations)} durations")
            loss = _get(conf, "model.loss.loss_name")
            if loss is not _ABSENT and loss != "tdt":
                problems.append(f"model.loss.loss_name={loss!r}, not 'tdt'")
    except Exception as exc:
        return CheckResult(
            "config", "tdt durations", FAIL, f"unresolvable: {exc}", "fix the ${...} interpolations"
        )
    if problems:
        return CheckResult(
            "config",
            "tdt durations",
            FAIL,
            "; ".join(problems),
            "make every durations field interpolate ${model.model_defaults.tdt_durations}",
        )
    return CheckResult("config", "tdt durations", PASS, f"{durations}, consistent everywhere")


def _walk(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, node


def _check_caps(conf) -> CheckResult:
    from omegaconf import OmegaConf

    try:
        flat = dict(_walk(OmegaConf.to_container(conf, resolve=True, throw_on_missing=False)))
    except Exception as exc:
        return CheckResult(
            "config",
            "batch caps",
            FAIL,
            f"config does not resolve: {exc}",
            "fix the ${...} interpolations",
        )
    caps = {k: v for k, v in flat.items() if k.rsplit(".", 1)[-1] in CAP_KEYS}
    problems = []
    for key, value in caps.items():
        leaf = key.rsplit(".", 1)[-1]
        if value is None or value == "???":
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{key}={value!r} is not a number")
        elif value < 0 or (value == 0 and leaf != "min_duration"):
            problems.append(f"{key}={value} must be > 0")
        elif leaf == "max_duration" and value > MAX_UTTERANCE_S:
            problems.append(f"{key}={value}s > {MAX_UTTERANCE_S:.0f}s (attention memory)")
    for key, value in caps.items():
        if key.endswith(".min_duration"):
            hi = caps.get(key[: -len("min_duration")] + "max_duration")
            if isinstance(hi, int | float) and isinstance(value, int | float) and value >= hi:
                problems.append(f"{key}={value} >= max_duration={hi}")
    for key, value in flat.items():
        increasing = isinstance(value, list) and all(b > a for a, b in pairwise(value))
        if key.endswith("bucket_edges") and not increasing:
            problems.append(f"{key}={value} must be increasing")
    if problems:
        return CheckResult(
            "config",
            "batch caps",
            FAIL,
            "; ".join(problems),
            "fix these caps in the training config",
        )
    if not caps:
        return CheckResult(
            "config",
            "batch caps",
            WARN,
            f"no batch caps found ({', '.join(CAP_KEYS)})",
            "set the sampler's caps explicitly",
        )
    shown = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in list(caps.items())[:6])
    return CheckResult("config", "batch caps", PASS, f"{len(caps)} sane: {shown}")


# ---------------------------------------------------------------- artifacts
def tokenizer_vocab_size(tok_dir: Path) -> tuple[int, str]:
    """Pieces in the tokenizer (what NeMo uses as vocab size), and where it was read."""
    model = tok_dir / "tokenizer.model"
    if model.is_file():
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(model)).get_piece_size(), model.name
    vocab = tok_dir / "vocab.txt"
    if vocab.is_file():
        with open(vocab, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip()), vocab.name
    raise FileNotFoundError(f"{tok_dir} has neither tokenizer.model nor vocab.txt")


def check_artifacts(cfg: ReadinessConfig, facts: dict) -> list[CheckResult]:
    return [
        _check_tokenizer(facts),
        _check_joint_cap(facts),
        _check_parquet(Path(cfg.train_parquet)),
        _check_manifest(Path(cfg.val_manifest)),
        _check_encoder(Path(cfg.pretrained_encoder), facts),
    ]


def _check_tokenizer(facts: dict) -> CheckResult:
    tok = facts.get("model.tokenizer.dir")
    if tok is None:
        return CheckResult(
            "artifacts",
            "tokenizer",
            FAIL,
            "model.tokenizer.dir is not set",
            "build it with `make prod-artifacts` and set the config field",
        )
    tok_dir = Path(tok)
    try:
        size, source = tokenizer_vocab_size(tok_dir)
    except Exception as exc:
        return CheckResult(
            "artifacts",
            "tokenizer",
            FAIL,
            str(exc),
            "build it with scripts/build_tokenizer.py (`make prod-artifacts`)",
        )
    conf = facts.get("conf")
    mismatched = []
    for key in (
        "model.joint.num_classes",
        "model.decoder.vocab_size",
        "model.aux_ctc.decoder.num_classes",
    ):
        value = _get(conf, key) if conf is not None else _ABSENT
        if value is _ABSENT or value is None or value == -1:
            continue
        if value != size:
            mismatched.append(f"{key}={value}")
    if mismatched:
        return CheckResult(
            "artifacts",
            "tokenizer",
            FAIL,
            f"{tok_dir} has {size} pieces but {', '.join(mismatched)}",
            f"set them to {size} or leave them unset (NeMo fills them)",
        )
    return CheckResult(
        "artifacts",
        "tokenizer",
        PASS,
        f"{tok_dir}: {size} pieces ({source}); config vocabulary sizes agree",
    )


def _check_joint_cap(facts: dict) -> CheckResult:
    """The sampler's TDT joint cap: on, what it counts, and whether the longest clip fits."""
    import math

    from omegaconf import OmegaConf

    from lf_asr.data.batch_planning import JointCap

    conf = facts.get("conf")
    if conf is None:
        return CheckResult("config", "joint cap", FAIL, "no config loaded", "fix the config first")
    flat = dict(_walk(OmegaConf.to_container(conf, resolve=True, throw_on_missing=False)))

    def find(leaf, default=None):
        return next((v for k, v in flat.items() if k.rsplit(".", 1)[-1] == leaf), default)

    cap = find("max_joint_elements")
    if not cap:
        status = WARN if _get(conf, "model.loss.loss_name") == "tdt" else PASS
        return CheckResult(
            "config",
            "joint cap",
            status,
            "data.max_joint_elements is unset: the sampler does not cap the TDT joint tensor",
            "set it; configs/train/stage1_prod_8xh200.yaml states how it is derived",
        )
    try:
        vocab, _ = tokenizer_vocab_size(Path(str(facts.get("model.tokenizer.dir"))))
    except Exception:
        vocab = _get(conf, "model.joint.num_classes")
    if not isinstance(vocab, int) or vocab <= 0:
        return CheckResult(
            "config",
            "joint cap",
            FAIL,
            "vocabulary size unknown (no tokenizer, no model.joint.num_classes)",
            "build the tokenizer or set model.joint.num_classes",
        )
    fused = _get(conf, "model.joint.fused_batch_size")
    fused = fused if _get(conf, "model.joint.fuse_loss_wer") is True else None
    durations = _get(conf, "model.model_defaults.tdt_durations")
    stride = _get(conf, "model.preprocessor.window_stride")
    sub = _get(conf, "model.encoder.subsampling_factor")
    joint = JointCap(
        max_elements=int(cap),
        subsampling_factor=sub if isinstance(sub, int) else 8,
        vocab_size=vocab,
        num_durations=len(durations) if isinstance(durations, list) else 0,
        frame_shift_s=stride if isinstance(stride, int | float) else 0.01,
        fused_batch_size=fused if isinstance(fused, int) else None,
    )
    edges = find("bucket_edges") or [MAX_UTTERANCE_S]
    last = float(edges[-1])
    per_token = float(joint.rows(1) * joint.row_elements(last, 0))  # one clip, U + 1 = 1
    tokens = math.floor(joint.max_elements / per_token) - 1  # most tokens one such clip may have
    dense = math.ceil(DENSE_TOKENS_PER_S * last)
    counted = f"B + min(B, {fused})" if joint.fused_batch_size else "2B (unfused joint)"
    detail = (
        f"{cap:,} elements ({cap * 4 / 1e9:.1f} GB as fp32), counting {counted} rows x T x (U+1)"
        f" x {vocab + 1 + joint.num_durations}; a {last:g} s clip may carry {tokens} tokens"
    )
    if tokens < dense:
        return CheckResult(
            "config",
            "joint cap",
            FAIL,
            f"{detail}, below a dense transcript ({dense})",
            f"raise data.max_joint_elements to {int(per_token * (dense + 1)):,} or lower the "
            "last bucket edge",
        )
    return CheckResult("config", "joint cap", PASS, detail)


def _check_parquet(path: Path) -> CheckResult:
    fix = "build it with `make prod-artifacts` or pass --train-parquet"
    if not path.is_file():
        return CheckResult("artifacts", "train parquet", FAIL, f"{path} not found", fix)
    import pyarrow.parquet as pq

    from lf_asr.data.schema import INDEX_COLUMNS, index_schema_problems

    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:
        return CheckResult("artifacts", "train parquet", FAIL, f"{path}: unreadable ({exc})", fix)
    problems = index_schema_problems(schema)  # names and types (castable types pass)
    if problems:
        return CheckResult(
            "artifacts", "train parquet", FAIL, f"{path}: {'; '.join(problems)}", fix
        )
    if meta.num_rows == 0:
        return CheckResult("artifacts", "train parquet", FAIL, f"{path} has no rows", fix)
    return CheckResult(
        "artifacts",
        "train parquet",
        PASS,
        f"{path}: {meta.num_rows:,} rows, all {len(INDEX_COLUMNS)} index columns, types castable",
    )


def _check_manifest(path: Path, sample: int = 100) -> CheckResult:
    fix = "build it with scripts/split_manifest.py or pass --val-manifest"
    if not path.is_file():
        return CheckResult("artifacts", "val manifest", FAIL, f"{path} not found", fix)
    rows = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            rows += 1
            if lineno <= sample:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    return CheckResult(
                        "artifacts",
                        "val manifest",
                        FAIL,
                        f"{path}:{lineno} is not JSON ({exc})",
                        fix,
                    )
                if not isinstance(rec, dict) or "duration" not in rec:
                    return CheckResult(
                        "artifacts",
                        "val manifest",
                        FAIL,
                        f"{path}:{lineno} has no 'duration' field",
                        fix,
                    )
    if rows == 0:
        return CheckResult("artifacts", "val manifest", FAIL, f"{path} is empty", fix)
    return CheckResult("artifacts", "val manifest", PASS, f"{path}: {rows:,} utterances")


_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def encoder_shapes(state: dict) -> tuple[int | None, int | None]:
    """(d_model, n_layers) of a FastConformer encoder state dict (keys with or without prefix)."""
    layers = {int(m.group(1)) for k in state if (m := _LAYER.search(k))}
    d_model = None
    for key, tensor in state.items():
        if re.search(r"layers\.0\.norm_feed_forward1\.weight$", key) or re.search(
            r"layers\.0\.self_attn\.linear_q\.weight$", key
        ):
            d_model = int(tensor.shape[0])
            break
    return d_model, (max(layers) + 1 if layers else None)


def _check_encoder(path: Path, facts: dict) -> CheckResult:
    fix = "copy the Parakeet TDT 1.1B encoder state dict there or pass --pretrained-encoder"
    if not path.is_file():
        return CheckResult("artifacts", "pretrained encoder", FAIL, f"{path} not found", fix)
    import torch

    try:
        # mmap: tensors stay on disk, so a 4 GB file costs no RAM to inspect.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        return CheckResult(
            "artifacts",
            "pretrained encoder",
            FAIL,
            f"{path}: not a torch state dict ({type(exc).__name__}: {exc})",
            fix,
        )
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        return CheckResult(
            "artifacts",
            "pretrained encoder",
            FAIL,
            f"{path} holds a {type(state).__name__}, not a state dict",
            fix,
        )
    d_model, n_layers = encoder_shapes(state)
    want = (facts.get("model.encoder.d_model"), facts.get("model.encoder.n_layers"))
    detail = f"{path}: d_model={d_model}, layers={n_layers}"
    if d_model is None or n_layers is None:
        return CheckResult(
            "artifacts",
            "pretrained encoder",
            FAIL,
            detail + " (no FastConformer layer keys found)",
            fix,
        )
    if None in want:
        return CheckResult(
            "artifacts",
            "pretrained encoder",
            WARN,
            detail + "; config encoder size unknown, not compared",
            "fix the config schema row first",
        )
    if (d_model, n_layers) != want:
        return CheckResult(
            "artifacts",
            "pretrained encoder",
            FAIL,
            f"{detail} but the config says d_model={want[0]}, n_layers={want[1]}",
            "use the matching encoder or fix model.encoder in the config",
        )
    return CheckResult("artifacts", "pretrained encoder", PASS, detail + ", matches the config")

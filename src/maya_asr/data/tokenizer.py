"""Train the multilingual SentencePiece BPE on the train split, in NeMo's tokenizer layout.

Steps (:func:`build_tokenizer`):

1. count characters and lines per language in ``train.jsonl`` (one streaming pass);
2. language-balanced sampling with a temperature: language ``l`` gets a share of the character
   budget proportional to ``chars_l ** T``, so low-resource scripts are repeated and get pieces
   of their own while high-resource ones are subsampled (second pass keeps only the chosen lines);
3. quality filter on the sample: length bounds, a stricter script check than the manifest's, and
   lines holding rare characters outside every language's alphabet ("junk") are dropped;
4. one line per script present with its whole alphabet (every letter and mark of its Unicode
   block), so ``character_coverage=1.0`` covers every character of those scripts, seen or not;
5. train with pinned symbols — ``<unk>`` id 0 and no bos/eos/pad: NeMo's hybrid TDT/CTC models
   append their blank after the vocabulary and use no bos/eos — and text normalisation off
   (``identity``): transcripts are normalised by our own policy before they get here;
6. write ``tokenizer.model``, ``tokenizer.vocab``, ``vocab.txt`` (NeMo's format, as
   ``nemo...sentencepiece_tokenizer.create_spt_model`` writes it), ``build_info.json`` and
   ``tokenizer_report.json`` (tokens per character, tokens per second, unknown-token rate, and
   the CTC load: tokens per 80-ms encoder frame, which must stay below 1).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import unicodedata
from collections import Counter, defaultdict
from dataclasses import asdict, replace
from itertools import pairwise
from pathlib import Path

from maya_asr.data.config import DataConfig, TextPolicy, TokenizerConfig
from maya_asr.data.text_policy import spoken_chars
from maya_asr.languages import LANGUAGES
from maya_asr.text import script_share
from maya_asr.text.scripts import SCRIPTS

UNK_PIECE = "<unk>"
MODEL_FILES = ("tokenizer.model", "tokenizer.vocab", "vocab.txt")
INFO_NAME, REPORT_NAME = "build_info.json", "tokenizer_report.json"
REPORT_MAX_PER_LANG = 20000  # train utterances per language the report encodes
# FastConformer's encoder emits one frame per 80 ms (10 ms hop, 8x subsampling). CTC needs a
# frame per token plus one per adjacent repeat: a "CTC load" above 1 cannot be aligned at all.
ENCODER_FRAMES_PER_S = 12.5


def ctc_load(ids: list[int], duration_s: float) -> float:
    """(tokens + adjacent repeats) / encoder frames; above 1.0 CTC has no valid alignment."""
    repeats = sum(1 for a, b in pairwise(ids) if a == b)
    return (len(ids) + repeats) / max(1, int(duration_s * ENCODER_FRAMES_PER_S))


def script_alphabet(policy: TextPolicy) -> list[str]:
    """Every character a transcript of this policy may hold as a letter: the letters and marks of
    the script's main block (basic letters for Latin, lower case only when the policy folds case),
    digits, and the punctuation the policy keeps."""
    lo, hi = SCRIPTS[policy.script][0]
    if policy.script == "Latin":
        chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        if not policy.lowercase:
            chars += [c.upper() for c in chars]
    else:
        chars = [chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c))[0] in "LM"]
    return chars + list("0123456789") + list(policy.keep_chars)


def sampling_quotas(
    chars: dict[str, int], lines: dict[str, int], cfg: TokenizerConfig
) -> dict[str, int]:
    """Lines to draw per language: character shares ~ ``chars ** T`` of a budget of at most
    ``max_sentences`` lines (fewer when the corpus is smaller)."""
    langs = [lang for lang in chars if lines[lang] > 0]
    total_chars = sum(chars[lang] for lang in langs)
    total_lines = sum(lines[lang] for lang in langs)
    budget_chars = total_chars * min(1.0, cfg.max_sentences / max(1, total_lines))
    weights = {lang: chars[lang] ** cfg.temperature for lang in langs}
    norm = sum(weights.values())
    quotas = {}
    for lang in langs:
        mean = chars[lang] / lines[lang]
        quotas[lang] = max(1, round(budget_chars * weights[lang] / norm / max(mean, 1e-9)))
    return quotas


def _choose(n: int, quota: int, rng: random.Random) -> Counter:
    """How many times each of ``n`` line indices is drawn: repeats when ``quota > n``.

    Memory is O(quota): a language is only repeated when it is small."""
    reps, rest = divmod(quota, n)
    counts = Counter(dict.fromkeys(range(n), reps)) if reps else Counter()
    counts.update(rng.sample(range(n), rest))
    return counts


def _passes_quality(text: str, policy: TextPolicy, cfg: TokenizerConfig) -> bool:
    return (
        cfg.min_chars <= len(text) <= cfg.max_chars
        and script_share(text, policy.script) >= cfg.min_script_share
    )


def sample_text(train_manifest: Path, cfg: DataConfig) -> tuple[list[tuple[str, str]], dict]:
    """Balanced, filtered ``(lang, text)`` lines for SentencePiece, and their statistics."""
    tcfg = cfg.tokenizer
    chars: dict[str, int] = defaultdict(int)
    lines: dict[str, int] = defaultdict(int)
    with open(train_manifest, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            chars[rec["lang"]] += len(rec["text"])
            lines[rec["lang"]] += 1
    if not lines:
        raise ValueError(f"{train_manifest} is empty: nothing to train a tokenizer on")
    quotas = sampling_quotas(chars, lines, tcfg)
    rng = random.Random(tcfg.seed)
    chosen = {lang: _choose(lines[lang], quotas[lang], rng) for lang in sorted(quotas)}
    picked: list[tuple[str, str]] = []
    index: dict[str, int] = defaultdict(int)
    with open(train_manifest, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            lang = rec["lang"]
            times = chosen[lang].get(index[lang], 0)
            index[lang] += 1
            picked.extend([(lang, rec["text"])] * times)

    dropped = Counter()
    clean = []
    for lang, text in picked:
        if _passes_quality(text, cfg.text[lang], tcfg):
            clean.append((lang, text))
        else:
            dropped[f"{lang}:quality"] += 1
    alphabet = {ch for lang in quotas for ch in script_alphabet(cfg.text[lang])}
    counts = Counter()
    for _, text in clean:
        counts.update(text)
    junk = {
        ch
        for ch, n in counts.items()
        if ch not in alphabet and ch != " " and n < tcfg.min_char_count
    }
    final = []
    for lang, text in clean:
        if junk and any(ch in junk for ch in text):
            dropped[f"{lang}:junk_char"] += 1
        else:
            final.append((lang, text))
    stats = {
        "lines": dict(lines),
        "chars": dict(chars),
        "quotas": quotas,
        "sampled_lines": dict(Counter(lang for lang, _ in final)),
        "dropped": dict(dropped),
        "junk_chars": sorted(f"U+{ord(c):04X}" for c in junk),
    }
    return final, stats


def write_nemo_vocab(spm_vocab: Path, out: Path) -> None:
    """``vocab.txt`` as NeMo's ``create_spt_model`` writes it: special pieces dropped, a piece
    starting a word loses its ``▁``, any other piece gets a ``##`` prefix."""
    specials = {"<s>", "</s>", "<pad>", UNK_PIECE}
    tokens = []
    for line in spm_vocab.read_text(encoding="utf-8").splitlines():
        piece = line.split("\t")[0]
        if piece in specials:
            continue
        token = piece[1:] if piece.startswith("▁") else f"##{piece}"
        tokens.append(token if token else piece[0])
    out.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


def train_sentencepiece(
    text_file: Path, out_dir: Path, vocab_size: int, split_digits: bool, threads: int
) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(out_dir / "tokenizer"),
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        unk_piece=UNK_PIECE,
        normalization_rule_name="identity",
        remove_extra_whitespaces=True,
        split_by_unicode_script=True,
        split_digits=split_digits,
        byte_fallback=False,
        input_sentence_size=0,  # we sampled already; SentencePiece reads every line
        max_sentence_length=16384,
        hard_vocab_limit=False,  # a tiny corpus may run out of merges before vocab_size
        num_threads=max(1, threads),
        minloglevel=2,
    )


def tokenizer_report(model_path: Path, manifests: dict[str, Path]) -> dict:
    """Per split and language: utterances, tokens per character, tokens per second, unk rate."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    unk = sp.unk_id()
    report: dict[str, dict] = {}
    for split, path in manifests.items():
        rows: dict[str, dict] = {}
        texts: dict[str, list[tuple[str, float]]] = defaultdict(list)
        with open(path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                bucket = texts[rec["lang"]]
                if len(bucket) < REPORT_MAX_PER_LANG:
                    bucket.append((rec["text"], rec["duration"]))
        for lang in [lang for lang in LANGUAGES if lang in texts]:
            items = texts[lang]
            ids = sp.encode([t for t, _ in items])
            n_tok = sum(len(x) for x in ids)
            n_unk = sum(x.count(unk) for x in ids)
            n_chr = sum(spoken_chars(t) for t, _ in items)
            secs = sum(d for _, d in items)
            loads = sorted(ctc_load(x, d) for x, (_, d) in zip(ids, items, strict=True))
            rows[lang] = {
                "utterances": len(items),
                "tokens_per_char": round(n_tok / max(1, n_chr), 4),
                "tokens_per_second": round(n_tok / max(secs, 1e-9), 3),
                "unk_rate": round(n_unk / max(1, n_tok), 6),
                "utterances_with_unk": sum(unk in x for x in ids),
                "ctc_load_p99": round(loads[min(len(loads) - 1, int(0.99 * len(loads)))], 3),
                "ctc_load_max": round(loads[-1], 3),
            }
        report[split] = rows
    return report


def build_tokenizer(
    train_manifest: str | Path,
    out_dir: str | Path,
    cfg: DataConfig,
    val_manifest: str | Path | None = None,
    vocab_size: int | None = None,
    threads: int = 1,
) -> dict:
    """Train and write the tokenizer directory; return ``build_info`` with the report inside."""
    tcfg = cfg.tokenizer if vocab_size is None else replace(cfg.tokenizer, vocab_size=vocab_size)
    cfg = replace(cfg, tokenizer=tcfg)
    train_manifest, out_dir = Path(train_manifest), Path(out_dir)
    lines, stats = sample_text(train_manifest, cfg)
    langs = sorted({lang for lang, _ in lines} | set(stats["quotas"]))
    scripts = sorted({cfg.text[lang].script for lang in langs})
    alphabet_lines = []
    for script in scripts:
        lang = next(lang for lang in langs if cfg.text[lang].script == script)
        alphabet_lines.append(" ".join(script_alphabet(cfg.text[lang])))
    required = {ch for _, t in lines for ch in t} | {ch for t in alphabet_lines for ch in t}
    required = (required - {" "}) | {"▁"}
    if tcfg.vocab_size < len(required) + 1:
        raise ValueError(
            f"vocab_size {tcfg.vocab_size} is below the {len(required)} characters that must each "
            f"be a piece plus <unk>; use at least {len(required) + 1} (more leaves room for merges)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        text_file = work / "train_text.txt"
        with open(text_file, "w", encoding="utf-8") as f:
            for _, text in lines:
                f.write(text + "\n")
            for line in alphabet_lines:
                f.write(line + "\n")
        train_sentencepiece(text_file, work, tcfg.vocab_size, tcfg.split_digits, threads)
        text_file.unlink()
        write_nemo_vocab(work / "tokenizer.vocab", work / "vocab.txt")
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(work / "tokenizer.model"))
        manifests = {"train": train_manifest}
        if val_manifest is not None:
            manifests["val"] = Path(val_manifest)
        report = tokenizer_report(work / "tokenizer.model", manifests)
        (work / REPORT_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False))
        info = {
            "vocab_size_requested": tcfg.vocab_size,
            "vocab_size": sp.get_piece_size(),
            "unk_id": sp.unk_id(),
            "bos_id": sp.bos_id(),
            "eos_id": sp.eos_id(),
            "pad_id": sp.pad_id(),
            "required_chars": len(required),
            "scripts": scripts,
            "config": asdict(tcfg),
            "train_manifest": str(train_manifest),
            **stats,
        }
        (work / INFO_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["report"] = report
    return info


def format_report(info: dict) -> str:
    lines = [
        f"vocab {info['vocab_size']} (asked {info['vocab_size_requested']}), "
        f"{info['required_chars']} characters covered, scripts: {', '.join(info['scripts'])}",
        f"{'lang':<6}{'split':<7}{'utts':>7}{'tok/char':>10}{'tok/s':>8}{'unk_rate':>10}"
        f"{'ctc_load_max':>14}",
    ]
    for split, rows in info["report"].items():
        for lang, r in rows.items():
            lines.append(
                f"{lang:<6}{split:<7}{r['utterances']:>7}{r['tokens_per_char']:>10.3f}"
                f"{r['tokens_per_second']:>8.2f}{r['unk_rate']:>10.4f}{r['ctc_load_max']:>14.2f}"
            )
    return "\n".join(lines)

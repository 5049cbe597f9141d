"""Configuration of the data pipeline (``configs/data/*.yaml``): one dataclass per stage.

A config file has one section per stage (``text``, ``manifest``, ``split``, ``tokenizer``,
``index``); every field has a default here, so a file only states what it changes. Validation
lives in each dataclass's ``__post_init__`` and raises ``ValueError`` naming the field to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from maya_asr.languages import LANGUAGES, get_language
from maya_asr.text.scripts import SCRIPTS

PUNCTUATION_POLICIES = ("keep", "strip")


@dataclass(frozen=True)
class TextPolicy:
    """How one language's transcripts are normalised and checked."""

    script: str  # expected Unicode script (a key of maya_asr.text.SCRIPTS)
    min_script_share: float = 0.9  # letters outside the script above 1 - this share: reject
    punctuation: str = "strip"  # "strip": punctuation (danda included) becomes a space; "keep"
    keep_chars: str = ""  # punctuation kept under "strip" (e.g. "'" for English contractions)
    lowercase: bool = False  # fold case (only meaningful for Latin script)
    min_chars_per_s: float = 0.5  # fewer non-space characters per second of audio: reject
    max_chars_per_s: float = 40.0  # more: reject (the transcript cannot belong to the audio)

    def __post_init__(self) -> None:
        if self.script not in SCRIPTS:
            raise ValueError(f"text.script {self.script!r} is unknown; use one of {list(SCRIPTS)}")
        if not 0.0 <= self.min_script_share <= 1.0:
            raise ValueError(
                f"text.min_script_share must be in [0, 1], got {self.min_script_share}"
            )
        if self.punctuation not in PUNCTUATION_POLICIES:
            raise ValueError(f"text.punctuation must be one of {PUNCTUATION_POLICIES}")
        if not 0.0 <= self.min_chars_per_s < self.max_chars_per_s:
            raise ValueError(
                "text.min_chars_per_s must be >= 0 and below text.max_chars_per_s, got "
                f"{self.min_chars_per_s} and {self.max_chars_per_s}"
            )


@dataclass(frozen=True)
class ManifestConfig:
    """Stage 1: raw shards -> manifest.jsonl + rejects.jsonl."""

    max_reject_rate: float = 0.05  # exit non-zero when rejects / (accepted + rejects) exceed it
    min_duration_s: float = 0.0  # clips at or below this are rejected (0: only non-positive)
    max_duration_s: float = 60.0  # longer clips are rejected (the sampler's buckets stop at 20 s)
    header_bytes: int = 4096  # bytes read per audio member to parse its header

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_reject_rate <= 1.0:
            raise ValueError(
                f"manifest.max_reject_rate must be in [0, 1], got {self.max_reject_rate}"
            )
        if not 0.0 <= self.min_duration_s < self.max_duration_s:
            raise ValueError("manifest.min_duration_s must be >= 0 and below max_duration_s")
        if self.header_bytes < 64:
            raise ValueError(f"manifest.header_bytes must be at least 64, got {self.header_bytes}")


@dataclass(frozen=True)
class SplitConfig:
    """Stage 2: manifest -> train/val (append-stable, speaker-disjoint)."""

    salt: str = "maya-split-v1"  # hash salt: changing it reshuffles every split (never do lightly)
    val_hours: float | None = None  # target val hours per language (wins over val_fraction)
    val_fraction: float = 0.01  # target val share of each language's hours
    min_val_utterances: int = 20  # at least this many val utterances per language when possible
    max_val_fraction: float = 0.5  # val never takes more than this share of a language's hours

    def __post_init__(self) -> None:
        if self.val_hours is not None and self.val_hours <= 0:
            raise ValueError(f"split.val_hours must be positive or null, got {self.val_hours}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"split.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.min_val_utterances < 0:
            raise ValueError("split.min_val_utterances must be >= 0")
        if not 0.0 < self.max_val_fraction < 1.0:
            raise ValueError("split.max_val_fraction must be in (0, 1)")


@dataclass(frozen=True)
class TokenizerConfig:
    """Stage 3: train split -> SentencePiece BPE in NeMo's layout."""

    vocab_size: int = 32000  # pieces including <unk> (id 0); no bos/eos/pad: NeMo adds blank
    temperature: float = 0.5  # language sampling p_l ~ chars_l ** T (1: natural, 0: uniform)
    max_sentences: int = 5_000_000  # sentences fed to SentencePiece after balancing
    min_chars: int = 2  # transcripts shorter than this are left out of tokenizer training
    max_chars: int = 1000  # and longer than this
    min_script_share: float = 0.98  # stricter than the manifest: tokenizer text must be clean
    min_char_count: int = 3  # off-script characters seen fewer times are junk: drop their lines
    seed: int = 0  # sampling seed
    split_digits: bool = True  # digits become single pieces (numbers read out digit by digit)

    def __post_init__(self) -> None:
        if self.vocab_size < 16:
            raise ValueError(f"tokenizer.vocab_size must be at least 16, got {self.vocab_size}")
        if not 0.0 <= self.temperature <= 1.0:
            raise ValueError(f"tokenizer.temperature must be in [0, 1], got {self.temperature}")
        if self.max_sentences < 1 or self.min_chars < 1 or self.max_chars < self.min_chars:
            raise ValueError("tokenizer.max_sentences >= 1 and 1 <= min_chars <= max_chars needed")
        if not 0.0 <= self.min_script_share <= 1.0:
            raise ValueError("tokenizer.min_script_share must be in [0, 1]")


@dataclass(frozen=True)
class IndexConfig:
    """Stage 4: train split + tokenizer -> production parquet."""

    row_group_rows: int = 1_000_000  # rows per parquet row group (and per write batch)
    compression: str = "zstd"  # parquet codec

    def __post_init__(self) -> None:
        if self.row_group_rows < 1:
            raise ValueError(f"index.row_group_rows must be positive, got {self.row_group_rows}")


@dataclass(frozen=True)
class DataConfig:
    """The whole pipeline: a text policy per language plus one config per stage."""

    text: dict[str, TextPolicy] = field(default_factory=dict)  # language code -> policy
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    index: IndexConfig = field(default_factory=IndexConfig)

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", resolve_text_policies({}))
        missing = [code for code in LANGUAGES if code not in self.text]
        if missing:
            raise ValueError(f"text policies missing for {missing}")


def _build(cls: type, section: dict[str, Any] | None, where: str):
    section = dict(section or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    return cls(**section)


def resolve_text_policies(section: dict[str, Any]) -> dict[str, TextPolicy]:
    """``{"defaults": {...}, "languages": {"en": {...}}}`` -> a policy for every language."""
    section = dict(section or {})
    unknown = sorted(set(section) - {"defaults", "languages"})
    if unknown:
        raise ValueError(f"text: unknown key(s) {unknown}; use 'defaults' and 'languages'")
    defaults = dict(section.get("defaults") or {})
    overrides = dict(section.get("languages") or {})
    for code in overrides:
        get_language(code)
    policies = {}
    for code in LANGUAGES:
        merged = {"script": get_language(code).script, **defaults, **(overrides.get(code) or {})}
        policies[code] = _build(TextPolicy, merged, f"text.languages.{code}")
    return policies


def data_config_from_dict(raw: dict[str, Any] | None) -> DataConfig:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - {"text", "manifest", "split", "tokenizer", "index"})
    if unknown:
        raise ValueError(f"data config: unknown section(s) {unknown}")
    return DataConfig(
        text=resolve_text_policies(raw.get("text") or {}),
        manifest=_build(ManifestConfig, raw.get("manifest"), "manifest"),
        split=_build(SplitConfig, raw.get("split"), "split"),
        tokenizer=_build(TokenizerConfig, raw.get("tokenizer"), "tokenizer"),
        index=_build(IndexConfig, raw.get("index"), "index"),
    )


def load_data_config(path: str | Path | None) -> DataConfig:
    """Read a ``configs/data/*.yaml`` file; ``None`` gives the built-in defaults."""
    if path is None:
        return data_config_from_dict({})
    import yaml

    path = Path(path)
    if not path.exists():
        raise ValueError(f"data config {path} does not exist (see configs/data/)")
    try:
        return data_config_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None

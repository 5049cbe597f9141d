"""Synthetic raw shards and index rows, for tests and benchmarks (no espeak-ng needed).

Audio is a seeded tone with a little noise, so every clip decodes to a known array; shards are
written member by member, so a test can put anything (garbage, a missing member, a key twice)
exactly where it wants it.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maya_asr.data import raw_format

# Short transcripts in each language's script (a greeting and a few words).
SAMPLE_TEXT = {
    "hi": "नमस्ते दुनिया आज मौसम अच्छा है",
    "bn": "নমস্কার পৃথিবী আজ আবহাওয়া ভালো",
    "ta": "வணக்கம் உலகம் இன்று வானிலை நன்று",
    "te": "నమస్కారం ప్రపంచం ఈరోజు వాతావరణం బాగుంది",
    "mr": "नमस्कार जग आज हवामान छान आहे",
    "gu": "નમસ્તે દુનિયા આજે હવામાન સારું છે",
    "kn": "ನಮಸ್ಕಾರ ಜಗತ್ತು ಇಂದು ಹವಾಮಾನ ಚೆನ್ನಾಗಿದೆ",
    "ml": "നമസ്കാരം ലോകം ഇന്ന് കാലാവസ്ഥ നല്ലതാണ്",
    "pa": "ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨੀਆ ਅੱਜ ਮੌਸਮ ਵਧੀਆ ਹੈ",
    "or": "ନମସ୍କାର ଦୁନିଆ ଆଜି ପାଗ ଭଲ ଅଛି",
    "as": "নমস্কাৰ পৃথিৱী আজি বতৰ ভাল",
    "en": "hello world the weather is fine today",
}


def tone(duration_s: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """(T,) float32 in [-0.5, 0.5]: a seeded-frequency sine plus a little noise."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    freq = rng.uniform(110, 440)
    audio = 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(n)
    return audio.astype(np.float32)


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode (T,) or (T, C) float audio as 16-bit ``"wav"`` or ``"flac"`` bytes."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


@dataclass(frozen=True)
class SyntheticUtterance:
    key: str  # WebDataset key, e.g. "hi_000001"
    lang: str  # language code written in the JSON (and usually the folder)
    text: str  # transcript as written in the JSON
    speaker: str = "spk0"
    duration_s: float = 1.5
    sample_rate: int = 16000
    fmt: str = "flac"  # "wav" or "flac"
    seed: int = 0

    def audio(self) -> np.ndarray:
        return tone(self.duration_s, self.sample_rate, self.seed)

    def members(self) -> list[tuple[str, bytes]]:
        """The two tar members of this utterance: audio then JSON."""
        return [
            (f"{self.key}.{self.fmt}", encode(self.audio(), self.sample_rate, self.fmt)),
            (f"{self.key}.json", raw_format.metadata_bytes(self.text, self.lang, self.speaker)),
        ]


def write_tar(path: str | Path, members: Iterable[tuple[str, bytes]]) -> Path:
    """Write members in the given order with the raw format's fixed tar metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            raw_format.add_member(tar, name, data)
    return path


def write_utterances(path: str | Path, utterances: Iterable[SyntheticUtterance]) -> Path:
    return write_tar(path, (m for u in utterances for m in u.members()))


def make_utterances(
    lang: str, count: int, start: int = 0, speakers: int = 3, seed: int = 0
) -> list[SyntheticUtterance]:
    """``count`` valid utterances of ``lang``, keys ``<lang>_<start+i>``; mixed rates/formats."""
    rng = np.random.default_rng([seed, start, len(lang)])
    words = SAMPLE_TEXT[lang].split()
    out = []
    for i in range(start, start + count):
        n_words = int(rng.integers(2, len(words) + 1))
        text = " ".join(words[:n_words])
        out.append(
            SyntheticUtterance(
                key=f"{lang}_{i:06d}",
                lang=lang,
                text=text,
                speaker=f"{lang}-spk{i % speakers}",
                duration_s=round(0.25 + 0.12 * len(text), 3),
                sample_rate=int(rng.choice([8000, 16000, 22050])),
                fmt=str(rng.choice(["wav", "flac"])),
                seed=i,
            )
        )
    return out

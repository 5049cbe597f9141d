"""Real words per language for the demo corpus.

Indic languages with a Debian aspell dictionary take their words from it (``aspell dump
master``); Assamese (no dictionary) and English use the word banks written by hand in
``wordbanks/<lang>.txt``. Every word is NFC-normalised and must pass the language's script check.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from importlib import resources

from maya_asr.languages import Language, get_language
from maya_asr.text.scripts import is_script_word

MIN_CHARS, MAX_CHARS = 2, 12  # code points; keeps fragments and long compounds out of the demo


def word_source(lang: str | Language) -> str:
    """Human-readable source of a language's words (a code or a :class:`Language`), for reports."""
    language = lang if isinstance(lang, Language) else get_language(lang)
    if language.aspell_dict:
        return f"Debian aspell-{language.aspell_dict} dictionary"
    return f"hand-written word bank (maya_asr/data/wordbanks/{language.code}.txt)"


def _aspell_words(dict_name: str) -> list[str]:
    if shutil.which("aspell") is None:
        raise RuntimeError(
            "aspell is not installed; run `make system-deps` (or apt-get install aspell "
            f"aspell-{dict_name})"
        )
    proc = subprocess.run(
        ["aspell", "-d", dict_name, "dump", "master"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(
            f"aspell has no '{dict_name}' dictionary ({why});"
            f" install it with `apt-get install aspell-{dict_name}` or `make system-deps`"
        )
    return proc.stdout.decode("utf-8", errors="replace").split()


def _bank_words(lang: str) -> list[str]:
    text = resources.files("maya_asr.data").joinpath(f"wordbanks/{lang}.txt").read_text("utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return " ".join(lines).split()


def load_words(lang: str | Language) -> list[str]:
    """Sorted, de-duplicated, NFC words of ``lang`` that pass its script check.

    ``lang`` is a target language code or any :class:`Language` (the pretraining languages of
    ``maya_asr.data.pretrain_corpus`` are not targets but take their words the same way).
    """
    language = lang if isinstance(lang, Language) else get_language(lang)
    if language.aspell_dict:
        raw = _aspell_words(language.aspell_dict)
    else:
        raw = _bank_words(language.code)
    words = set()
    for word in raw:
        word = unicodedata.normalize("NFC", word)
        if language.script == "Latin":
            word = word.lower()
        if MIN_CHARS <= len(word) <= MAX_CHARS and is_script_word(word, language.script):
            words.add(word)
    if not words:
        raise RuntimeError(f"no usable {language.code} words from {word_source(language)}")
    return sorted(words)

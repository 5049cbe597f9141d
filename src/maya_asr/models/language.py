"""The per-language additive embedding on the encoder output, and language-id plumbing.

Design (compare NeMo's prompt model, which concatenates a one-hot prompt and projects it, and
omnilingual's LID embedding): one learned vector per language is *added* to every encoder frame,
``encoded[b, :, t] += E[lang_b]``. Adding is the cheapest conditioning that keeps the pretrained
encoder's output space intact (E starts at std 0.02, next to nothing), and because the joint's
encoder projection and the CTC head are affine, a fixed language's vector folds exactly into
their biases (see :mod:`maya_asr.models.stock_export`).

Language id ``-1`` (``lf_asr.data.schema.NO_LANGUAGE``) is the *language-free path*. Without a
language-ID head it adds nothing. With one (:class:`LanguageIdentifier`, ``model.lid_loss_weight >
0``) the head reads the pooled encoder output and supplies the vector: ``softmax(logits) @ E``
(``lid_mode: soft``) or ``E[argmax]`` (``hard``); a given language always overrides it. Training
drops each utterance's language with probability ``dropout`` so the model learns that path too,
and trains the head on every utterance's true language (cross-entropy, weight
``lid_loss_weight``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

NO_LANGUAGE = -1  # the same value as lf_asr.data.schema.NO_LANGUAGE
LID_MODES = ("soft", "hard")


class LanguageEmbedding(torch.nn.Module):
    """``num_languages`` learned vectors of size ``dim`` added to (B, D, T) encoder outputs."""

    def __init__(self, num_languages: int, dim: int, dropout: float = 0.0, init_std: float = 0.02):
        super().__init__()
        if num_languages < 1 or dim < 1:
            raise ValueError(f"need >= 1 language and dim >= 1, got {num_languages} and {dim}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"language_dropout {dropout} must lie in [0, 1]")
        self.num_languages = num_languages
        self.dropout = dropout
        self.weight = torch.nn.Parameter(torch.randn(num_languages, dim) * init_std)

    def drop(self, lang_ids: torch.Tensor) -> torch.Tensor:
        """Training-time language dropout: each id becomes NO_LANGUAGE with prob ``dropout``."""
        if self.dropout <= 0:
            return lang_ids
        keep = torch.rand(lang_ids.shape, device=lang_ids.device) >= self.dropout
        return torch.where(keep, lang_ids, torch.full_like(lang_ids, NO_LANGUAGE))

    def bias(self, lang_ids: torch.Tensor) -> torch.Tensor:
        """(B, D) vectors to add: ``E[id]`` for known ids, zeros for NO_LANGUAGE.

        The table is always part of the graph (masked rows get zero gradient) so DDP never sees
        it unused, even in a batch where every language was dropped.
        """
        if lang_ids.dim() != 1:
            raise ValueError(f"lang_ids must be (B,), got shape {tuple(lang_ids.shape)}")
        if bool(((lang_ids < NO_LANGUAGE) | (lang_ids >= self.num_languages)).any()):
            raise ValueError(
                f"language ids {lang_ids.tolist()} out of range: use 0..{self.num_languages - 1} "
                f"or {NO_LANGUAGE} for no language"
            )
        known = (lang_ids >= 0).to(self.weight.dtype).unsqueeze(1)
        return self.weight[lang_ids.clamp(min=0)] * known

    def forward(
        self, encoded: torch.Tensor, lang_ids: torch.Tensor, free: torch.Tensor | None = None
    ) -> torch.Tensor:
        """encoded (B, D, T) + bias (B, D, 1); NO_LANGUAGE rows add ``free`` (B, D) if given."""
        lang_ids = lang_ids.to(encoded.device)
        bias = self.bias(lang_ids)
        if free is not None:
            bias = torch.where((lang_ids >= 0).unsqueeze(1), bias, free.to(bias.dtype))
        return encoded + bias.to(encoded.dtype).unsqueeze(-1)

    def mix(self, logits: torch.Tensor, mode: str) -> torch.Tensor:
        """(B, D) vectors from language-ID ``logits`` (B, L): the probability-weighted mix of the
        table's rows (``soft``) or the most likely language's row (``hard``)."""
        if mode == "soft":
            return torch.softmax(logits.float(), dim=-1).to(self.weight.dtype) @ self.weight
        if mode == "hard":
            return self.weight[logits.argmax(dim=-1)]
        raise ValueError(f"lid_mode {mode!r}: use one of {LID_MODES}")


def masked_mean(encoded: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """(B, D) mean over the valid frames of ``encoded`` (B, D, T); all frames if no lengths."""
    if lengths is None:
        return encoded.mean(dim=-1)
    t = torch.arange(encoded.shape[-1], device=encoded.device)
    valid = (t[None, :] < lengths.to(encoded.device)[:, None]).to(encoded.dtype)  # (B, T)
    total = (encoded * valid.unsqueeze(1)).sum(dim=-1)
    return total / valid.sum(dim=-1, keepdim=True).clamp(min=1.0)


class LanguageIdentifier(torch.nn.Module):
    """Utterance language from the encoder output: masked mean over frames -> 2-layer MLP.

    Mean pooling (not attention pooling) because the language is a property of the whole
    utterance and the pooled BiLSTM/Conformer features already separate languages linearly well;
    the hidden layer gives the head room without touching the encoder's output space.
    """

    def __init__(self, num_languages: int, dim: int, hidden: int = 256):
        super().__init__()
        if num_languages < 1 or dim < 1 or hidden < 1:
            raise ValueError(f"need >= 1 language/dim/hidden: {num_languages}, {dim}, {hidden}")
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, num_languages)
        )

    def forward(self, encoded: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, L) for encoded (B, D, T) with valid ``lengths`` (B,)."""
        return self.net(masked_mean(encoded, lengths).float())


def lid_loss(logits: torch.Tensor, lang_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, accuracy) over rows with a known language; both 0 (in the graph) if none."""
    known = lang_ids >= 0
    if not bool(known.any()):
        zero = logits.sum() * 0.0
        return zero, zero.detach()
    logits, target = logits[known], lang_ids[known].to(logits.device)
    accuracy = (logits.argmax(dim=-1) == target).float().mean()
    return torch.nn.functional.cross_entropy(logits.float(), target), accuracy


def language_ids(
    language: str | Sequence[str | None] | None, count: int, languages: Sequence[str]
) -> torch.Tensor | None:
    """Ids (count,) for ``language``: one code for all inputs, one code (or None) per input.

    Returns None when no language is given at all (the language-free path).
    """
    if language is None:
        return None
    codes = [language] * count if isinstance(language, str) else list(language)
    if len(codes) != count:
        raise ValueError(f"got {len(codes)} languages for {count} audio inputs; give one per input")
    ids = []
    for code in codes:
        if code is None:
            ids.append(NO_LANGUAGE)
        elif code in languages:
            ids.append(list(languages).index(code))
        else:
            raise ValueError(f"language {code!r} is not one of the model's {', '.join(languages)}")
    return torch.tensor(ids, dtype=torch.long)


def split_language_batch(batch) -> tuple[tuple, torch.Tensor | None]:
    """``(audio, audio_lens, tokens, token_lens[, lang_ids])`` -> (NeMo 4-tuple, lang_ids|None)."""
    if len(batch) == 5:
        return tuple(batch[:4]), batch[4]
    if len(batch) == 4:
        return batch, None
    raise ValueError(
        f"a training batch has 4 (NeMo) or 5 (with lang_ids) elements, got {len(batch)}; see "
        "lf_asr/data/schema.py for the batch contract"
    )

"""What NeMo's own clients read from a ``.nemo`` config, written the same way by every writer.

A model config that builds and trains fine can still break NeMo's inference API: NeMo's
``transcribe`` of file paths or a manifest reads ``cfg.validation_ds.use_start_end_token``
(``_setup_transcribe_dataloader`` in ``hybrid_rnnt_ctc_bpe_models.py``), NeMo's
``examples/asr/transcribe_speech.py`` picks the class from ``cfg.target``, and a user fine-tuning
a ``.nemo`` starts from its ``train_ds``. Our training reads its data with our own loader
(``lf_asr``), so nothing forced those sections into the config. :func:`with_nemo_sections` adds
them; training (``model.nemo``, ``model_init.nemo``), the stock export and the tiny test model
all call it, so every ``.nemo`` we write carries the same keys.

The sections record our loader's settings where NeMo has the same notion (sample rate, manifest,
batch size and duration, duration range, workers) and NeMo's defaults elsewhere. Two of NeMo's
defaults would be wrong for us and are set explicitly: ``use_start_end_token: false`` (NeMo's
BPE datasets default to ``true``, which would add BOS/EOS our tokenizer has no ids for) and
``use_lhotse: false`` (the plain manifest dataset, the simplest start for a fine-tuner). The
sections carry no ``defer_setup``: NeMo builds loaders from them only when a new model is
constructed from the config, never on ``restore_from``, and training adds them after
construction.
"""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf, open_dict

DATASET_KEYS = ("train_ds", "validation_ds", "test_ds")
# NeMo's defaults for a manifest-based BPE dataset (fast-conformer hybrid configs).
_DEFAULT_BATCH_SIZE = 16
_DEFAULT_WORKERS = 4


def _sample_rate(model_cfg: DictConfig) -> int:
    rate = model_cfg.get("sample_rate", None) or model_cfg.get("preprocessor", {}).get(
        "sample_rate", None
    )
    if not rate:
        raise ValueError(
            "the model config has neither sample_rate nor preprocessor.sample_rate; set "
            "model.sample_rate (16000 for every Maya model)"
        )
    return int(rate)


def dataset_sections(sample_rate: int, data: Mapping | None = None) -> dict[str, dict]:
    """``train_ds``/``validation_ds``/``test_ds`` for a model at ``sample_rate``.

    ``data``: the training run's ``data:`` section (:class:`maya_asr.training.options.DataSection`
    keys), recorded where NeMo has the same setting; None gives NeMo's defaults and no paths.
    """
    data = data or {}
    common = {
        "sample_rate": int(sample_rate),
        "use_start_end_token": False,  # NeMo's BPE datasets default to true: our tokens have none
        "num_workers": int(data.get("num_workers", _DEFAULT_WORKERS)),
        "pin_memory": True,
        "is_tarred": False,
        "tarred_audio_filepaths": None,
        "use_lhotse": False,
    }
    edges = list(data.get("bucket_edges", []) or [])
    train = {
        **common,
        # Our training reads the parquet index of lf_asr (tar byte offsets), which NeMo's
        # loaders cannot: NeMo gets no manifest, and the index is recorded beside it.
        "manifest_filepath": None,
        "index_parquet": data.get("train_parquet"),
        "batch_size": int(data.get("max_batch_size", _DEFAULT_BATCH_SIZE)),
        "batch_duration": data.get("max_batch_dur"),  # padded seconds per batch (lhotse's name)
        "max_tokens_in_batch": data.get("max_tokens_in_batch"),
        "min_duration": float(edges[0]) if edges else 0.1,
        "max_duration": float(edges[-1]) if edges else 20.0,  # the sampler drops longer clips
        "bucket_duration_bins": [float(e) for e in edges[1:-1]] or None,
        "temperature": data.get("temperature"),  # language re-weighting p_l ~ hours_l ** T
        "shuffle": True,
    }
    validation = {
        **common,
        "manifest_filepath": data.get("val_manifest"),
        "batch_size": int(data.get("val_batch_size", _DEFAULT_BATCH_SIZE)),
        "max_utterances": data.get("max_val_utterances"),
        "shuffle": False,
    }
    test = {**validation, "manifest_filepath": None, "max_utterances": None}
    return {"train_ds": train, "validation_ds": validation, "test_ds": test}


def _check_decoding_and_tokenizer(cfg: DictConfig) -> None:
    missing = [key for key in ("tokenizer", "decoding") if not cfg.get(key, None)]
    if cfg.get("aux_ctc", None) is not None and not cfg.aux_ctc.get("decoding", None):
        missing.append("aux_ctc.decoding")
    if missing:
        raise ValueError(
            f"the model config lacks {', '.join(missing)}: NeMo's transcribe and "
            "change_decoding_strategy read them; start from configs/train/*.yaml, which set them"
        )


def with_nemo_sections(
    model_cfg: DictConfig | Mapping, data: Mapping | None = None, target: str | None = None
) -> DictConfig:
    """A copy of ``model_cfg`` with what NeMo's clients read (see module doc).

    ``data`` given (a training run): the dataset sections are rewritten from it. ``data`` None
    (an export or a ``.nemo`` written before this module): sections already present are kept
    (a missing ``use_start_end_token`` is set to false) and missing ones get NeMo's defaults.
    ``target``: the class path to record (default: keep the config's own ``target``).
    """
    cfg = OmegaConf.create(OmegaConf.to_container(OmegaConf.create(model_cfg), resolve=True))
    _check_decoding_and_tokenizer(cfg)
    sections = dataset_sections(_sample_rate(cfg), data)
    with open_dict(cfg):
        for key in DATASET_KEYS:
            if data is not None or cfg.get(key, None) is None:
                cfg[key] = sections[key]
            elif "use_start_end_token" not in cfg[key]:
                cfg[key].use_start_end_token = False
        if target is not None:
            cfg.target = target
        if not cfg.get("target", None):
            raise ValueError("the model config has no target (the model class path); pass target=")
    return cfg

"""Transcription and evaluation of a ``.nemo`` model (NeMo is imported lazily, inside functions).

- :mod:`~maya_asr.inference.inputs`: manifest rows, files, folders -> audio (any rate/channels)
- :mod:`~maya_asr.inference.transcriber`: load a model, pick a head, transcribe in batches
- :mod:`~maya_asr.inference.error_rates`: WER/CER overall and per language
- :mod:`~maya_asr.inference.evaluation`: both heads (and models) side by side, RTFx, reports
- :mod:`~maya_asr.inference.tiny_model`: a small random hybrid TDT+CTC model for tests/benchmarks
"""

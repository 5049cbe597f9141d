"""Operations: the R2 object store client, the crash-safe checkpoint watcher, readiness checks.

This room depends on boto3 and the standard library only (readiness may import torch, OmegaConf,
pyarrow and sentencepiece lazily); it never imports ``maya_asr.models`` or ``maya_asr.training``.
"""

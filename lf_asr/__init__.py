"""lf_asr: the runtime data loader of Maya ASR (tar-offset reader, batch sampler, dataset).

Knows nothing of maya_asr's models: it reads the production index and raw shards and yields
batches of tensors.
"""

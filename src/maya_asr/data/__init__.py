"""Data pipeline library: raw shard format, demo corpus, manifests, splits, tokenizer, index."""

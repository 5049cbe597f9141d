"""Runtime data loading: production index schema, tar-offset reader, sampler, dataset."""

"""Generator: task reader, sampler loop, model client, retry policy, shard commit."""

"""Whether a finished job failed by `spec.failurePolicy`, and the reason shown to its user.

Judged on the shard manifests once every shard finished: the job's completed and failed counts,
its failure classes (most frequent first) with one example message each.
"""

from __future__ import annotations

from collections import Counter

from gym_operator.api.rolloutjob import FailurePolicySpec
from gym_operator.storage.manifest import ShardManifest

TOP_CLASSES = 3
EXAMPLE_CHARS = 160


def verdict(
    policy: FailurePolicySpec, manifests: list[ShardManifest], num_shards: int
) -> str | None:
    """Why the job failed, or None (not finished yet, or within the policy)."""
    if len(manifests) != num_shards or not all(m.finished for m in manifests):
        return None
    completed = sum(m.completed for m in manifests)
    failed = sum(m.failed for m in manifests)
    if not policy.exceeded(completed, failed):
        return None
    classes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for manifest in manifests:
        classes.update(manifest.failure_classes)
        for name, message in manifest.failure_examples.items():
            examples.setdefault(name, message)
    finished = completed + failed
    head = (
        f"{failed} of {finished} rollouts failed ({failed / finished:.0%}; "
        f"failurePolicy.maxFailedFraction is {policy.max_failed_fraction:g})"
    )
    top = [
        f"{name} x{count}"
        + (f' (e.g. "{examples[name][:EXAMPLE_CHARS]}")' if name in examples else "")
        for name, count in classes.most_common(TOP_CLASSES)
    ]
    return head + (": " + "; ".join(top) if top else "")

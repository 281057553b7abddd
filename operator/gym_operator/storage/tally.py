"""Tally: a shard's outcome counts, one value for its part buffer, its manifest and its stats."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Tally(BaseModel):
    """Rollouts, failures and bad rows counted, with their reward sums; added up part by part."""

    completed: int = 0
    failed: int = 0
    input_errors: int = 0
    truncated: int = 0
    passed: int = 0
    reward_sum: float = 0.0
    failure_classes: dict[str, int] = Field(
        default_factory=dict, description="Failure rows by failure class."
    )

    def count_rollout(self, reward: float, passed: bool, truncated: bool) -> None:
        """One rollout row with its reward."""
        self.completed += 1
        self.reward_sum += reward
        self.passed += passed
        self.truncated += truncated

    def count_failure(self, failure_class: str) -> None:
        """One failure row of this class."""
        self.failed += 1
        self.failure_classes[failure_class] = self.failure_classes.get(failure_class, 0) + 1

    def count_bad_row(self) -> None:
        """One input row that is not a task (its slots end as an input error)."""
        self.input_errors += 1

    def add(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        self.completed += other.completed
        self.failed += other.failed
        self.input_errors += other.input_errors
        self.truncated += other.truncated
        self.passed += other.passed
        self.reward_sum += other.reward_sum
        for name, count in other.failure_classes.items():
            self.failure_classes[name] = self.failure_classes.get(name, 0) + count

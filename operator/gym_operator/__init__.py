"""gym-operator: declarative RL rollout generation, verification and dataset building."""

__version__ = "0.1.0"

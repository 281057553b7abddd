"""The gymops.dev/v1alpha1 resources (RolloutJob, Dataset): the single source of truth.

Imports nothing else of gym_operator. CRDs, docs and validation are derived from these models.
"""

from gym_operator.api.common import (
    API_GROUP,
    API_VERSION,
    GROUP_VERSION,
    TERMINAL_PHASES,
    Condition,
    Phase,
)
from gym_operator.api.dataset import Dataset, DatasetSpec, DatasetStatus
from gym_operator.api.loading import SpecError, load_resource, load_resources, parse_resource
from gym_operator.api.rolloutjob import RolloutJob, RolloutJobSpec, RolloutJobStatus

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "GROUP_VERSION",
    "TERMINAL_PHASES",
    "Condition",
    "Dataset",
    "DatasetSpec",
    "DatasetStatus",
    "Phase",
    "RolloutJob",
    "RolloutJobSpec",
    "RolloutJobStatus",
    "SpecError",
    "load_resource",
    "load_resources",
    "parse_resource",
]

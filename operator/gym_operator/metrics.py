"""Prometheus metric definitions, one place. Names gymops_<noun>_<unit>; no per-task labels."""

"""Verifiers: the NeMo Gym resource-server protocol, the built-in verifiers and reward shaping."""

"""NeMo Gym's wire formats, owned here: task row, `response`, rollout row, failure row, /verify.

The bottom layer: imports nothing of gym_operator, only the openai SDK (whose Responses types
NeMo Gym validates against) and the standard library.
"""

"""The pieces of ``separate train``: recipes, data loading, the loop, schedules, state files, DDP.

The entry point is :func:`separate.train.train`.
"""

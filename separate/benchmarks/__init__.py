"""Measurement pieces behind ``separate bench`` (:mod:`separate.bench` is the public entry point).

``process``: child processes, their peak resident memory, the task protocol parent <-> child.
``measure``: what runs inside a child: model timings and memory, engine overhead, batching.
"""

"""The DVC stages beyond the estimators: I/O, tracking and plots, one module per stage.

``pipeline/<stage>.py`` imports only its stage's module (``train`` serves warmup and calibrate),
so DVC declares each stage's code exactly (tests/test_stage_deps.py): editing one stage's module
re-runs that stage alone. This file imports nothing, so it adds no dependency to any stage.
"""

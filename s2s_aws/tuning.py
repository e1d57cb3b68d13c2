"""Automatic model tuning: hyperparameter ranges checked against the one schema, tuning jobs and
their handle (written next)."""
from __future__ import annotations

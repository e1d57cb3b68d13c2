"""Listings of training jobs, endpoints, models, transform jobs (and tuning jobs): one summary row per
resource, filters by status, name and run id (written next)."""
from __future__ import annotations

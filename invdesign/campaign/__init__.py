"""Campaigns: problems x optimizers x seeds, each run in its own directory, resumable, on a pool or Dask.

    from invdesign.campaign import load_spec, run_campaign, resume_campaign
    result = run_campaign(load_spec("problems/default.toml"), "results/default", workers=2)

Modules: ``spec`` (TOML / dict specs and their validation), ``storage`` (the on-disk format),
``records`` (ranking history records), ``lease`` (one worker per unit), ``runner`` (one resumable
run), ``executors`` (in-process, process pool, Dask), ``progress`` (bar and log), ``summary``
(``summary.csv``), ``campaign`` (orchestration). ``storage`` and ``records`` use the standard library
only; the names below are imported lazily, so ``import invdesign.campaign.storage`` (what the report
does) does not import the optimizers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CampaignSpec": "spec", "ProblemEntry": "spec", "OptimizerEntry": "spec", "Unit": "spec",
    "SpecError": "spec", "load_spec": "spec",
    "CampaignResult": "campaign", "run_campaign": "campaign", "resume_campaign": "campaign",
    "prepare_directory": "campaign", "stored_spec": "campaign", "execute": "campaign",
    "run_unit": "runner", "Run": "runner", "ResumeMismatch": "runner",
    "Lease": "lease", "LeaseLost": "lease",
    "StorageError": "storage", "read_history": "storage",
    "write_summary": "summary", "read_summary": "summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Campaign reports: convergence curves, fixed-budget tables, ECDF / data profiles, win rates, Markdown.

    from invdesign.report import write_report, load
    write_report("results/default")        # writes report.md and figures/*.png there

Reads campaign directories through ``invdesign.campaign.storage`` and ``records`` only (the report
never imports the optimizers or the physics). Problem-specific design plots are made by the CLI
(``invdesign report``), which has the problem registry, and passed in as ``design_figures``.
"""

from invdesign.report.analysis import fixed_budget_table, target_for, win_rates
from invdesign.report.load import CampaignData, RunData, load
from invdesign.report.markdown import best_runs, write_report

__all__ = ["CampaignData", "RunData", "best_runs", "fixed_budget_table", "load", "target_for", "win_rates",
           "write_report"]

"""Campaign reports: convergence curves, fixed-budget tables, ECDF / data profiles, win rates, Markdown.

    from invdesign.report import write_report, load
    write_report("results/default")        # writes report.md and figures/*.png there
    df = load_table("results/default")     # pandas DataFrame: every evaluation, physical values by name

Reads campaign directories through ``invdesign.campaign.storage`` and ``records`` only (the report
never imports the optimizers or the physics). Problem-specific design plots are made by the CLI
(``invdesign report``), which has the problem registry, and passed in as ``design_figures``.
"""

from invdesign.report.analysis import fixed_budget_table, target_for, win_rates
from invdesign.report.load import CampaignData, RunData, load
from invdesign.report.export import export_designs
from invdesign.report.markdown import best_runs, write_report
from invdesign.report.table import ExportError, export_table, load_table

__all__ = ["CampaignData", "ExportError", "RunData", "best_runs", "export_designs", "export_table",
           "fixed_budget_table", "load", "load_table", "target_for", "win_rates", "write_report"]

"""The run report: one self-contained HTML page per run (docs/report.md)."""

from loyalist.report.build import dbt_docs_dir, reports_dir, write_report

__all__ = ["dbt_docs_dir", "reports_dir", "write_report"]

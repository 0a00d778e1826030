"""Run GX suites against DataFrames and keep the results as Data Docs.

One ``Validator`` per pipeline step: with a ``project_root`` it uses a file-backed GX context
(``<project_root>/gx``) and every run updates the static Data Docs site there (built offline; the
pages load their CSS from a CDN, so offline they render unstyled but complete). Without one it is
ephemeral (tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402


@dataclass
class ValidationOutcome:
    suite: str
    success: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        status = "passed" if self.success else "FAILED"
        detail = "" if self.success else ": " + "; ".join(self.failed)
        return f"{self.suite}: {status} ({self.evaluated} expectations){detail}"


def _failure_text(result) -> str:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k in ("column", "column_list", "min_value", "max_value")}
    unexpected = result.result.get("unexpected_count")
    examples = result.result.get("partial_unexpected_list", [])[:3]
    return f"{cfg.type} {kwargs} unexpected={unexpected} e.g. {examples}"


class Validator:
    def __init__(self, project_root: Path | None = None):
        if project_root is None:
            self.context = gx.get_context(mode="ephemeral")
        else:
            project_root.mkdir(parents=True, exist_ok=True)
            self.context = gx.get_context(mode="file", project_root_dir=str(project_root))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)  # readable task logs
        self.datasource = self.context.data_sources.add_or_update_pandas(name="frames")
        self.with_docs = project_root is not None

    def _batch_definition(self, name: str):
        try:
            asset = self.datasource.get_asset(name)
        except LookupError:
            asset = self.datasource.add_dataframe_asset(name=name)
        try:
            return asset.get_batch_definition("whole")
        except KeyError:
            return asset.add_batch_definition_whole_dataframe("whole")

    def validate(self, df: pd.DataFrame, suite: gx.ExpectationSuite) -> ValidationOutcome:
        """Validate ``df`` against ``suite``; failed expectations are reported, never raised."""
        suite = self.context.suites.add_or_update(suite)
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"validate_{suite.name}", data=self._batch_definition(suite.name),
                                    suite=suite))
        actions = [UpdateDataDocsAction(name="update_data_docs")] if self.with_docs else []
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(name=f"check_{suite.name}", validation_definitions=[definition], actions=actions))
        result = checkpoint.run(batch_parameters={"dataframe": df})
        results = [r for run in result.run_results.values() for r in run.results]
        failed = [_failure_text(r) for r in results if not r.success]
        return ValidationOutcome(suite.name, bool(result.success), len(results), failed)

    def docs_index(self) -> str | None:
        sites = self.context.get_docs_sites_urls() if self.with_docs else []
        return sites[0]["site_url"] if sites else None

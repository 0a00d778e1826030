"""Run a suite against a DataFrame with an ephemeral GX context and summarise the outcome."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import pandas as pd  # noqa: E402
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


def validate_frame(df: pd.DataFrame, suite: gx.ExpectationSuite) -> ValidationOutcome:
    """Validate ``df`` against ``suite``; never raises on failed expectations, only reports them."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keeps task logs readable
    batch = (context.data_sources.add_pandas(name="frames")
             .add_dataframe_asset(name=suite.name)
             .add_batch_definition_whole_dataframe(name="whole"))
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate_{suite.name}", data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": df})
    failed = [_failure_text(r) for r in result.results if not r.success]
    return ValidationOutcome(suite.name, bool(result.success), len(result.results), failed)

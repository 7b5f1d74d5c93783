"""Turn GX validation results into `ExpectationOutcome`s: success, observed value, count, sample."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from great_expectations.core.expectation_validation_result import ExpectationValidationResult

from orchestration.quality.results import SAMPLE_SIZE, ExpectationOutcome, failed, jsonable, outcome_for
from orchestration.quality.suites import ExpectationSpec


def exception_message(info: Any) -> str | None:
    """GX reports errors either as one {raised_exception, exception_message} or one per metric."""
    if not isinstance(info, Mapping) or not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    messages = [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, Mapping) and (v.get("raised_exception") or v.get("exception_message"))
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def from_result(spec: ExpectationSpec, result: ExpectationValidationResult) -> ExpectationOutcome:
    """An expectation that GX could not compute is a failure, whatever `result.success` says."""
    details: Mapping[str, Any] = result.result or {}
    error = exception_message(result.exception_info)
    observed: Any = details.get("observed_value")
    unexpected_count = details.get("unexpected_count")
    sample: list[Any] = []
    if spec.type == "unexpected_rows_expectation":
        unexpected_count = observed
        sample = list((details.get("details") or {}).get("unexpected_rows") or [])[:SAMPLE_SIZE]
    elif "partial_unexpected_list" in details:
        sample = list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
        if observed is None:
            observed = {
                "element_count": details.get("element_count"),
                "unexpected_count": unexpected_count,
                "unexpected_percent": details.get("unexpected_percent"),
            }
    return outcome_for(
        spec,
        success=bool(result.success) and error is None,
        observed_value=jsonable(observed),
        unexpected_count=None if unexpected_count is None else int(unexpected_count),
        unexpected_sample=jsonable(sample),
        exception=error,
    )


__all__ = ["failed"]

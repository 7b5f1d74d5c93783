"""Quality domain: Great Expectations suites (expectations/suites/) as blocking Dagster asset checks."""

from dagster import Definitions

from orchestration.quality.checks import quality_checks
from orchestration.quality.resource import GxValidator

defs = Definitions(asset_checks=quality_checks, resources={"gx": GxValidator()})

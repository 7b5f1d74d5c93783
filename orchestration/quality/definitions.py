"""The quality domain's Dagster definitions: the GX suites as blocking asset checks, and their resource."""

from dagster import Definitions

from orchestration.quality.checks import quality_checks
from orchestration.quality.resource import GxValidator

defs = Definitions(asset_checks=quality_checks, resources={"gx": GxValidator()})

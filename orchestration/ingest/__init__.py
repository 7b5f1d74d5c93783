"""Ingest domain: raw loading of the landing files, their freshness, and the landing-folder sensor."""

from dagster import Definitions

from orchestration.ingest.assets import raw_assets
from orchestration.ingest.freshness import freshness_checks

defs = Definitions(assets=raw_assets, asset_checks=freshness_checks)

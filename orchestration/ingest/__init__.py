"""Ingest domain: raw loading of the landing files and the routing rules, their freshness, and the landing-folder sensor."""

from dagster import Definitions

from orchestration.ingest.assets import raw_assets
from orchestration.ingest.freshness import freshness_checks
from orchestration.ingest.routing_rules import routing_rules

defs = Definitions(assets=[*raw_assets, routing_rules], asset_checks=freshness_checks)

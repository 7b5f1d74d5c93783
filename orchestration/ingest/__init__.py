"""Ingest domain: raw loading of the landing files, the routing rules and the triage decisions, their freshness, and the landing-folder sensor."""

from dagster import Definitions

from orchestration.ingest.assets import raw_assets, shared_raw_tables
from orchestration.ingest.decisions import decisions
from orchestration.ingest.freshness import freshness_checks
from orchestration.ingest.routing_rules import routing_rules

defs = Definitions(
    assets=[*raw_assets, *shared_raw_tables, routing_rules, decisions], asset_checks=freshness_checks
)

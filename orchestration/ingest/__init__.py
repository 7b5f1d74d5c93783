"""Ingest domain: raw loading of the landing files."""

from dagster import Definitions

from orchestration.ingest.assets import raw_assets

defs = Definitions(assets=raw_assets)

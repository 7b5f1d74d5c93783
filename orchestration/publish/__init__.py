"""Publish domain: write-audit-publish of the mart into the serving file."""

from dagster import Definitions

from orchestration.publish.assets import published_audit_mart

defs = Definitions(assets=[published_audit_mart])

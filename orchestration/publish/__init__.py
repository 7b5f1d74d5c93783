"""Publish domain: write-audit-publish of the mart into the serving file, then the digests per route."""

from dagster import Definitions

from orchestration.publish.assets import published_audit_mart, published_notifications

defs = Definitions(assets=[published_audit_mart, published_notifications])

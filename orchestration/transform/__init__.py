"""Transform domain: the dbt project that builds the audit mart."""

from dagster import Definitions

from orchestration.transform.assets import order_audit_dbt_assets

defs = Definitions(assets=[order_audit_dbt_assets])

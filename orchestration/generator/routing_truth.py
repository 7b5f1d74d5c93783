"""Ground truth of routing: the money at risk, owner, route and priority each expected exception should get.

It applies the routing rules in force when the sample is generated (routing.yml, or ORDER_AUDIT_ROUTING) to
the expected exceptions, with the amounts at risk computed from the generator's own tables (what it wrote,
not what the pipeline read), per the definitions of `order_audit_exceptions.amount_at_risk` in
dbt_project/models/marts/_marts.yml. Written as `_ground_truth/expected_routing.csv`.
"""

from __future__ import annotations

from orchestration.generator.delivery import channel_sql
from orchestration.generator.sqlkit import Ctx
from orchestration.routing import Routing, RoutingRule
from orchestration.rules import RULE_CATALOG_FILE


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def _list(values: tuple[str, ...]) -> str:
    return "NULL" if not values else "[" + ", ".join(_literal(v) for v in values) + "]"


def _rule_row(rule: RoutingRule) -> str:
    bounds = [
        "NULL" if bound is None else f"{bound}::DECIMAL(18, 6)"
        for bound in (rule.min_amount_at_risk, rule.max_amount_at_risk)
    ]
    return (
        f"({rule.rule_order}, {_literal(rule.name)}, {_literal(rule.owner_team)}, {_literal(rule.route)}, "
        f"{_literal(rule.priority)}, {_list(rule.exception_codes)}::VARCHAR[], {_list(rule.channels)}::VARCHAR[], "
        f"{_list(rule.currencies)}::VARCHAR[], {_list(rule.warehouse_ids)}::VARCHAR[], "
        f"{_list(rule.source_systems)}::VARCHAR[], {bounds[0]}, {bounds[1]})"
    )


def create_expected_routing(ctx: Ctx, routing: Routing) -> None:
    """`expected_routing(entity_type, entity_id, exception_code, amount_at_risk, amount_at_risk_currency,
    routing_rule, owner_team, route, priority)`, one row per row of `expected_exceptions`."""
    seed = str(RULE_CATALOG_FILE).replace("'", "''")
    rules = ",\n".join(_rule_row(rule) for rule in routing.rules)
    ctx.run(
        f"""
        CREATE OR REPLACE TABLE routing_rules AS SELECT * FROM (VALUES {rules}) AS t(
            rule_order, rule_name, owner_team, route, priority, codes, channels, currencies, warehouses,
            sources, min_amount, max_amount)
        """
    )
    ctx.run(
        f"""
        CREATE OR REPLACE TABLE expected_routing AS
        WITH paid AS (
            SELECT e.i,
                sum(CASE WHEN e.event_type = 'capture' THEN e.amount ELSE 0 END) AS captured,
                sum(CASE WHEN e.event_type = 'refund' THEN e.amount ELSE 0 END) AS psp_refunded,
                sum(CASE WHEN e.event_type = 'chargeback' THEN e.amount ELSE 0 END) AS chargeback
            FROM payment_events AS e JOIN order_facts AS f USING (i)
            WHERE e.status = 'succeeded' AND e.currency = f.currency
            GROUP BY e.i
        ),
        latest AS (
            SELECT i, arg_max(refunded, updated_at) AS refunded, arg_max(status, updated_at) AS status
            FROM order_versions GROUP BY i
        ),
        orders AS (
            SELECT f.order_id, f.currency, ({channel_sql("f.i")}) AS channel, f.total, f.computed_total,
                   latest.refunded, coalesce(paid.captured, 0) AS captured,
                   coalesce(paid.psp_refunded, 0) AS psp_refunded, coalesce(paid.chargeback, 0) AS chargeback,
                   CASE WHEN latest.status IN ('pending', 'cancelled') THEN 0 ELSE f.total - latest.refunded END
                       - (coalesce(paid.captured, 0) - coalesce(paid.psp_refunded, 0)) AS balance
            FROM order_facts AS f JOIN latest USING (i) LEFT JOIN paid USING (i)
        ),
        amounts AS (
            SELECT x.entity_type, x.entity_id, x.exception_code, o.currency, o.channel, NULL AS warehouse_id,
                CASE x.exception_code
                    WHEN 'PAYMENT_MISSING' THEN abs(o.balance)
                    WHEN 'UNDERPAID' THEN o.balance
                    WHEN 'OVERPAID' THEN -o.balance
                    WHEN 'CANCELLED_NOT_REFUNDED' THEN o.captured - o.psp_refunded
                    WHEN 'REFUND_MISMATCH' THEN abs(o.psp_refunded - o.refunded)
                    WHEN 'DUPLICATE_CAPTURE' THEN o.captured
                    WHEN 'CHARGEBACK' THEN o.chargeback
                    WHEN 'ORDER_TOTAL_MISMATCH' THEN abs(o.total - o.computed_total)
                    WHEN 'SHIPPED_BEFORE_PAYMENT' THEN o.total
                    WHEN 'FULFILLMENT_DELAYED' THEN o.captured - o.psp_refunded
                    ELSE 0 END AS amount
            FROM expected_exceptions AS x JOIN orders AS o ON o.order_id = x.entity_id
            WHERE x.entity_type = 'order'
            UNION ALL
            SELECT 'payment', p.payment_id, 'ORPHAN_PAYMENT', p.currency, NULL, NULL,
                   CASE WHEN p.status = 'succeeded' THEN p.amount ELSE 0 END
            FROM payment_events AS p
            WHERE p.payment_id IN (SELECT entity_id FROM expected_exceptions WHERE entity_type = 'payment')
            UNION ALL
            SELECT 'movement', m.movement_id, 'ORPHAN_MOVEMENT', NULL, NULL, m.warehouse_id, 0
            FROM movements AS m
            WHERE m.movement_id IN (SELECT entity_id FROM expected_exceptions WHERE entity_type = 'movement')
            UNION ALL
            SELECT x.entity_type, x.entity_id, x.exception_code, NULL, NULL, split_part(x.entity_id, '|', 2), 0
            FROM expected_exceptions AS x WHERE x.entity_type = 'stock_position'
        ),
        rounded AS (
            SELECT a.*, c.source_system, round_to(a.amount, cur.exp)::DECIMAL(18, 6) AS amount_at_risk
            FROM amounts AS a
            JOIN read_csv('{seed}', header = true, all_varchar = true) AS c USING (exception_code)
            LEFT JOIN currencies AS cur ON cur.currency = a.currency
        )
        SELECT x.entity_type, x.entity_id, x.exception_code, x.amount_at_risk,
               x.currency AS amount_at_risk_currency,
               arg_min(r.rule_name, r.rule_order) AS routing_rule,
               arg_min(r.owner_team, r.rule_order) AS owner_team,
               arg_min(r.route, r.rule_order) AS route,
               arg_min(r.priority, r.rule_order) AS priority
        FROM rounded AS x JOIN routing_rules AS r
            ON (r.codes IS NULL OR list_contains(r.codes, x.exception_code))
            AND (r.channels IS NULL OR list_contains(r.channels, x.channel))
            AND (r.currencies IS NULL OR list_contains(r.currencies, x.currency))
            AND (r.warehouses IS NULL OR list_contains(r.warehouses, x.warehouse_id))
            AND (r.sources IS NULL OR list_contains(r.sources, x.source_system))
            AND (r.min_amount IS NULL OR x.amount_at_risk >= r.min_amount)
            AND (r.max_amount IS NULL OR x.amount_at_risk <= r.max_amount)
        GROUP BY ALL
        """
    )

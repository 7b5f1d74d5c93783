{#- Every detected exception with the routing rule that fits it first (routing.yml, in rule order): its
    owner team, route, priority, hours to resolve and expected outcome. A rule fits when every list it
    gives contains the exception's value (an exception without that value does not fit) and the amount at
    risk is within its bounds. The last rule has no match and fits everything. -#}
with

exceptions as (
    select
        exception_id,
        entity_type,
        entity_id,
        order_id,
        exception_code,
        severity,
        owner_team,
        detail,
        earlier_detail,
        source_system,
        trigger_text,
        amount_at_risk,
        currency,
        channel,
        warehouse_id
    from {{ ref('int_exceptions_detected') }}
),

rules as (
    select
        rule_order,
        rule_name,
        owner_team,
        route,
        priority,
        resolve_within_hours,
        expected_outcome,
        match_exception_codes,
        match_channels,
        match_currencies,
        match_warehouse_ids,
        match_source_systems,
        min_amount_at_risk,
        max_amount_at_risk
    from {{ ref('stg_routing__rules') }}
),

fitting as (
    select
        exceptions.exception_id,
        rules.rule_name,
        rules.owner_team,
        rules.route,
        rules.priority,
        rules.resolve_within_hours,
        rules.expected_outcome,
        row_number() over (partition by exceptions.exception_id order by rules.rule_order) as fit_rank
    from exceptions
    inner join rules
        on
            (rules.match_exception_codes is null or instr(rules.match_exception_codes, ',' || exceptions.exception_code || ',') > 0)
            and (rules.match_channels is null or instr(rules.match_channels, ',' || exceptions.channel || ',') > 0)
            and (rules.match_currencies is null or instr(rules.match_currencies, ',' || exceptions.currency || ',') > 0)
            and (rules.match_warehouse_ids is null or instr(rules.match_warehouse_ids, ',' || exceptions.warehouse_id || ',') > 0)
            and (rules.match_source_systems is null or instr(rules.match_source_systems, ',' || exceptions.source_system || ',') > 0)
            and (rules.min_amount_at_risk is null or exceptions.amount_at_risk >= rules.min_amount_at_risk)
            and (rules.max_amount_at_risk is null or exceptions.amount_at_risk <= rules.max_amount_at_risk)
),

first_fit as (
    select
        exception_id,
        rule_name,
        owner_team,
        route,
        priority,
        resolve_within_hours,
        expected_outcome
    from fitting
    where fit_rank = 1
),

final as (
    select
        exceptions.exception_id,
        exceptions.entity_type,
        exceptions.entity_id,
        exceptions.order_id,
        exceptions.exception_code,
        exceptions.severity,
        coalesce(first_fit.owner_team, exceptions.owner_team) as owner_team,
        exceptions.detail,
        exceptions.earlier_detail,
        exceptions.source_system,
        exceptions.trigger_text,
        exceptions.amount_at_risk,
        exceptions.currency,
        exceptions.channel,
        exceptions.warehouse_id,
        first_fit.rule_name as routing_rule,
        first_fit.route,
        first_fit.priority,
        first_fit.resolve_within_hours,
        first_fit.expected_outcome
    from exceptions
    left join first_fit on exceptions.exception_id = first_fit.exception_id
)

select * from final

{#- The routing rules in match order (rule_order 1 is tried first; the last one, with no match, is the default). -#}
with

source as (
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
    from {{ source('raw', 'routing_rules') }}
),

final as (
    select
        cast(rule_order as int) as rule_order,
        cast(rule_name as {{ string_type() }}) as rule_name,
        cast(owner_team as {{ string_type() }}) as owner_team,
        cast(route as {{ string_type() }}) as route,
        cast(priority as {{ string_type() }}) as priority,
        cast(resolve_within_hours as int) as resolve_within_hours,
        cast(expected_outcome as {{ string_type() }}) as expected_outcome,
        cast(match_exception_codes as {{ string_type() }}) as match_exception_codes,
        cast(match_channels as {{ string_type() }}) as match_channels,
        cast(match_currencies as {{ string_type() }}) as match_currencies,
        cast(match_warehouse_ids as {{ string_type() }}) as match_warehouse_ids,
        cast(match_source_systems as {{ string_type() }}) as match_source_systems,
        cast(min_amount_at_risk as decimal(18, 6)) as min_amount_at_risk,
        cast(max_amount_at_risk as decimal(18, 6)) as max_amount_at_risk
    from source
)

select * from final

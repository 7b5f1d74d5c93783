{#- The exception history: one row per change of an exception's state, appended, never rewritten. Each
    run compares the register with the last recorded change of each exception and appends what differs:
    opened, resolved (reason auto: the pipeline no longer detects it), reopened, and rerouted (a changed
    routing rule gave an open exception another rule, owner, route or priority). The last row of an
    exception carries its current status and routing, so the register's state can be re-derived from
    here; a rerun on the same files and rules appends nothing. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        full_refresh=false,
    )
}}
with

register as (
    select
        exception_id,
        status,
        owner_team,
        routing_rule,
        route,
        priority,
        detail,
        opened_at,
        resolved_at
    from {{ ref('order_audit_exceptions') }}
),

clock as (
    select as_of from {{ ref('int_audit_clock') }}
),

last_change as (
    {%- if is_incremental() %}
    select
        exception_id,
        change_sequence,
        to_status,
        owner_team,
        routing_rule,
        route,
        priority
    from (
        select
            exception_id,
            change_sequence,
            to_status,
            owner_team,
            routing_rule,
            route,
            priority,
            row_number() over (partition by exception_id order by change_sequence desc) as recency
        from {{ this }}
    ) as changes
    where recency = 1
    {%- else %}
        select
            cast(null as {{ string_type() }}) as exception_id,
            cast(null as int) as change_sequence,
            cast(null as {{ string_type() }}) as to_status,
            cast(null as {{ string_type() }}) as owner_team,
            cast(null as {{ string_type() }}) as routing_rule,
            cast(null as {{ string_type() }}) as route,
            cast(null as {{ string_type() }}) as priority
        where 1 = 0
    {%- endif %}
),

compared as (
    select
        register.exception_id,
        coalesce(last_change.change_sequence, 0) + 1 as change_sequence,
        last_change.to_status as from_status,
        register.status as to_status,
        case
            when last_change.exception_id is null and register.status = 'open' then 'opened'
            when last_change.exception_id is null then 'resolved'
            when last_change.to_status = 'open' and register.status = 'resolved' then 'resolved'
            when last_change.to_status = 'resolved' and register.status = 'open' then 'reopened'
            when
                register.status = 'open'
                and (
                    coalesce(last_change.routing_rule, '') <> coalesce(register.routing_rule, '')
                    or coalesce(last_change.owner_team, '') <> coalesce(register.owner_team, '')
                    or coalesce(last_change.route, '') <> coalesce(register.route, '')
                    or coalesce(last_change.priority, '') <> coalesce(register.priority, '')
                )
                then 'rerouted'
        end as change_type,
        register.owner_team,
        register.routing_rule,
        register.route,
        register.priority,
        register.detail,
        register.opened_at,
        register.resolved_at,
        last_change.routing_rule as previous_routing_rule,
        last_change.route as previous_route,
        last_change.priority as previous_priority
    from register
    left join last_change on register.exception_id = last_change.exception_id
),

final as (
    select
        cast({{ surrogate_key(['compared.exception_id', 'compared.change_sequence']) }} as {{ string_type() }})
            as history_id,
        cast(compared.exception_id as {{ string_type() }}) as exception_id,
        cast(compared.change_sequence as int) as change_sequence,
        cast(compared.change_type as {{ string_type() }}) as change_type,
        cast(compared.from_status as {{ string_type() }}) as from_status,
        cast(compared.to_status as {{ string_type() }}) as to_status,
        cast(
            case
                when compared.change_type in ('opened', 'reopened') then compared.opened_at
                when compared.change_type = 'resolved' then compared.resolved_at
                else clock.as_of
            end as timestamp
        ) as changed_at,
        cast('pipeline' as {{ string_type() }}) as changed_by,
        cast(case when compared.change_type = 'resolved' then 'auto' end as {{ string_type() }}) as reason,
        cast(
            case compared.change_type
                when 'rerouted'
                    then
                        'rule ' || coalesce(compared.previous_routing_rule, 'none') || ' -> '
                        || coalesce(compared.routing_rule, 'none') || ': route ' || coalesce(compared.previous_route, 'none')
                        || ' -> ' || coalesce(compared.route, 'none') || ', priority '
                        || coalesce(compared.previous_priority, 'none') || ' -> ' || coalesce(compared.priority, 'none')
                when 'resolved' then 'No longer detected.'
                else compared.detail
            end as {{ string_type() }}
        ) as note,
        cast(compared.owner_team as {{ string_type() }}) as owner_team,
        cast(compared.routing_rule as {{ string_type() }}) as routing_rule,
        cast(compared.route as {{ string_type() }}) as route,
        cast(compared.priority as {{ string_type() }}) as priority,
        cast(compared.detail as {{ string_type() }}) as detail,
        cast('{{ invocation_id }}' as {{ string_type() }}) as run_id
    from compared
    cross join clock
    where compared.change_type is not null
)

select * from final

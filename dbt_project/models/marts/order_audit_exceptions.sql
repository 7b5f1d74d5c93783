{#- The exception register with its lifecycle. Each run full-outer-joins what the data raises now
    with the register as it stands: new exceptions open, vanished ones resolve (never deleted),
    returning ones reopen the same row. Stamps are the run's as-of time, so a rerun on the same files
    changes nothing. full_refresh is off: a --full-refresh must not erase the audit history. -#}
{{
    config(
        materialized='incremental',
        unique_key='exception_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        full_refresh=false,
    )
}}
with

detected as (
    select
        exception_id,
        entity_type,
        entity_id,
        order_id,
        exception_code,
        severity,
        owner_team,
        detail
    from {{ ref('int_exceptions_detected') }}
),

clock as (
    select as_of from {{ ref('int_audit_clock') }}
),

register as (
    {%- if is_incremental() %}
    select
        exception_id,
        entity_type,
        entity_id,
        order_id,
        exception_code,
        severity,
        owner_team,
        detail,
        first_detected_at,
        last_detected_at,
        status,
        resolved_at
    from {{ this }}
    {%- else %}
        select
            cast(null as {{ string_type() }}) as exception_id,
            cast(null as {{ string_type() }}) as entity_type,
            cast(null as {{ string_type() }}) as entity_id,
            cast(null as {{ string_type() }}) as order_id,
            cast(null as {{ string_type() }}) as exception_code,
            cast(null as {{ string_type() }}) as severity,
            cast(null as {{ string_type() }}) as owner_team,
            cast(null as {{ string_type() }}) as detail,
            cast(null as timestamp) as first_detected_at,
            cast(null as timestamp) as last_detected_at,
            cast(null as {{ string_type() }}) as status,
            cast(null as timestamp) as resolved_at
        where 1 = 0
    {%- endif %}
),

merged as (
    select
        coalesce(detected.exception_id, register.exception_id) as exception_id,
        coalesce(detected.entity_type, register.entity_type) as entity_type,
        coalesce(detected.entity_id, register.entity_id) as entity_id,
        case when detected.exception_id is not null then detected.order_id else register.order_id end as order_id,
        coalesce(detected.exception_code, register.exception_code) as exception_code,
        coalesce(detected.severity, register.severity) as severity,
        coalesce(detected.owner_team, register.owner_team) as owner_team,
        coalesce(detected.detail, register.detail) as detail,
        coalesce(register.first_detected_at, clock.as_of) as first_detected_at,
        case when detected.exception_id is not null then clock.as_of else register.last_detected_at end
            as last_detected_at,
        case when detected.exception_id is not null then 'open' else 'resolved' end as status,
        case
            when detected.exception_id is not null then cast(null as timestamp)
            when register.status = 'resolved' then register.resolved_at
            else clock.as_of
        end as resolved_at
    from detected
    full outer join register on detected.exception_id = register.exception_id
    cross join clock
),

final as (
    select
        cast(exception_id as {{ string_type() }}) as exception_id,
        cast(entity_type as {{ string_type() }}) as entity_type,
        cast(entity_id as {{ string_type() }}) as entity_id,
        cast(order_id as {{ string_type() }}) as order_id,
        cast(exception_code as {{ string_type() }}) as exception_code,
        cast(severity as {{ string_type() }}) as severity,
        cast(owner_team as {{ string_type() }}) as owner_team,
        cast(detail as {{ string_type() }}) as detail,
        cast(first_detected_at as timestamp) as first_detected_at,
        cast(last_detected_at as timestamp) as last_detected_at,
        cast(status as {{ string_type() }}) as status,
        cast(resolved_at as timestamp) as resolved_at
    from merged
)

select * from final

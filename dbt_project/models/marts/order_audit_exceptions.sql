{#- The exception register with its lifecycle. Each run full-outer-joins what the data raises now
    with the register as it stands: new exceptions open, vanished ones resolve (never deleted),
    returning ones reopen the same row. Stamps are the run's as-of time, so a rerun on the same files
    changes nothing. An exception's stamps never go back: a correction that removes the latest clean
    event moves the default as-of time back; an exception still detected keeps its later
    last_detected_at (it was detected at that time too), and one that is gone is resolved no earlier
    than it was last detected. full_refresh is off: a --full-refresh must not erase the audit history.

    Routing (routing.yml) is applied to every exception detected now, so a changed rule re-routes the
    open ones on the next run; a resolved exception keeps the routing it had when it was last open.
    The workflow (workflow_state, assignee, snooze, resolution by a person or the pipeline) is the last
    row of order_audit_exception_history. The SLA clock starts when the workflow last (re)opened
    (opened_at); due_at is opened_at plus the rule's resolve_within_hours; age and SLA breach are
    measured to the as-of time, or to when the workflow was resolved. -#}
{{
    config(
        materialized='incremental',
        unique_key='exception_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="{{ keep_key_not_null('exception_id') }}",
    )
}}
{#- Columns a register written by an earlier release lacks (they are appended by on_schema_change): read as null. -#}
{%- set routing_columns = [
    ('source_system', string_type()),
    ('trigger', string_type()),
    ('amount_at_risk', 'decimal(38, 6)'),
    ('amount_at_risk_currency', string_type()),
    ('channel', string_type()),
    ('warehouse_id', string_type()),
    ('routing_rule', string_type()),
    ('route', string_type()),
    ('priority', string_type()),
    ('resolve_within_hours', 'int'),
    ('expected_outcome', string_type()),
] -%}
{%- set existing_columns = [] -%}
{%- if is_incremental() and this is string -%}
    {#- a unit test: `this` is its fixture, which has every column of the model -#}
    {%- set existing_columns = routing_columns | map(attribute=0) | list -%}
{%- elif is_incremental() -%}
    {%- set existing_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
{%- endif -%}
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
        detail,
        source_system,
        trigger_text as trigger,
        amount_at_risk,
        currency as amount_at_risk_currency,
        channel,
        warehouse_id,
        routing_rule,
        route,
        priority,
        resolve_within_hours,
        expected_outcome
    from {{ ref('int_exceptions_routed') }}
),

clock as (
    select as_of from {{ ref('int_audit_clock') }}
),

history as (
    select
        exception_id,
        change_sequence,
        change_type,
        changed_at,
        to_state,
        assignee,
        snoozed_until,
        resolution_reason,
        resolution_note,
        resolved_by,
        resolved_as_of
    from {{ ref('order_audit_exception_history') }}
),

workflow as (
    select
        exception_id,
        max(case when change_type in ('opened', 'reopened') then changed_at end) as opened_at,
        max(change_sequence) as last_change
    from history
    group by exception_id
),

current_state as (
    select
        history.exception_id,
        workflow.opened_at,
        history.to_state as workflow_state,
        history.assignee,
        history.snoozed_until,
        history.resolution_reason,
        history.resolution_note,
        history.resolved_by,
        history.resolved_as_of as workflow_resolved_at
    from history
    inner join workflow
        on
            history.exception_id = workflow.exception_id
            and history.change_sequence = workflow.last_change
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
        {%- for column, column_type in routing_columns %}
            {%- if column in existing_columns %}
        {{ column }},
            {%- else %}
        cast(null as {{ column_type }}) as {{ column }},
            {%- endif %}
        {%- endfor %}
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
            {%- for column, column_type in routing_columns %}
                cast(null as {{ column_type }}) as {{ column }},
            {%- endfor %}
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
        case
            when detected.exception_id is not null then greatest(clock.as_of, coalesce(register.last_detected_at, clock.as_of))
            else register.last_detected_at
        end as last_detected_at,
        case when detected.exception_id is not null then 'open' else 'resolved' end as status,
        case
            when detected.exception_id is not null then cast(null as timestamp)
            when register.status = 'resolved' then register.resolved_at
            else greatest(clock.as_of, register.last_detected_at)
        end as resolved_at,
        {%- for column, column_type in routing_columns %}
            case when detected.exception_id is not null then detected.{{ column }} else register.{{ column }} end
                as {{ column }},
        {%- endfor %}
        clock.as_of
    from detected
    full outer join register on detected.exception_id = register.exception_id
    cross join clock
),

with_workflow as (
    select
        merged.*,
        coalesce(current_state.opened_at, merged.first_detected_at) as opened_at,
        coalesce(current_state.workflow_state, case when merged.status = 'open' then 'open' else 'resolved' end)
            as workflow_state,
        current_state.assignee,
        current_state.snoozed_until,
        current_state.resolution_reason,
        current_state.resolution_note,
        current_state.resolved_by,
        coalesce(current_state.workflow_resolved_at, merged.resolved_at) as workflow_resolved_at
    from merged
    left join current_state on merged.exception_id = current_state.exception_id
),

timed as (
    select
        *,
        {{ add_hours('opened_at', 'resolve_within_hours') }} as due_at,
        case when workflow_state = 'resolved' then coalesce(workflow_resolved_at, as_of) else as_of end
            as clock_stopped_at
    from with_workflow
),

aged as (
    select
        *,
        greatest(
            cast(floor(({{ epoch_microseconds('clock_stopped_at') }} - {{ epoch_microseconds('opened_at') }}) / 86400000000) as int),
            0
        ) as age_days
    from timed
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
        cast(resolved_at as timestamp) as resolved_at,
        {%- for column, column_type in routing_columns %}
            cast({{ column }} as {{ column_type }}) as {{ column }},
        {%- endfor %}
        cast(opened_at as timestamp) as opened_at,
        cast(due_at as timestamp) as due_at,
        cast(age_days as int) as age_days,
        cast(
            case
                when age_days <= 1 then '0-1'
                when age_days <= 7 then '2-7'
                when age_days <= 30 then '8-30'
                else '>30'
            end as {{ string_type() }}
        ) as age_bucket,
        cast(
            coalesce({{ epoch_microseconds('clock_stopped_at') }} > {{ epoch_microseconds('due_at') }}, false) as boolean
        ) as sla_breached,
        cast(workflow_state as {{ string_type() }}) as workflow_state,
        cast(assignee as {{ string_type() }}) as assignee,
        cast(snoozed_until as timestamp) as snoozed_until,
        cast(resolution_reason as {{ string_type() }}) as resolution_reason,
        cast(resolution_note as {{ string_type() }}) as resolution_note,
        cast(resolved_by as {{ string_type() }}) as resolved_by,
        cast(workflow_resolved_at as timestamp) as workflow_resolved_at
    from aged
)

select * from final

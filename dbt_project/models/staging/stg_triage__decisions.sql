{#- One row per triage decision (decision_id; the later delivery wins), typed, timestamps in UTC; detail_shown
    is the exception's detail as the register showed it to the person (null in decisions written by hand). -#}
with

source as (
    select
        load_id,
        source_file,
        extract_date,
        line_number,
        decision_id,
        exception_id,
        action,
        decided_by,
        decided_at,
        reason,
        note,
        assignee,
        snoozed_until,
        detail_shown
    from {{ source('raw', 'decisions') }}
),

typed as (
    select
        {{ trimmed_id('decision_id') }} as decision_id,
        {{ trimmed_id('exception_id') }} as exception_id,
        trim(action) as action,
        trim(decided_by) as decided_by,
        {{ utc_timestamp('decided_at') }} as decided_at,
        nullif(trim(reason), '') as reason,
        nullif(trim(note), '') as note,
        nullif(trim(assignee), '') as assignee,
        case when nullif(trim(snoozed_until), '') is not null then {{ utc_timestamp('snoozed_until') }} end
            as snoozed_until,
        nullif(detail_shown, '') as detail_shown,
        load_id,
        source_file,
        extract_date,
        line_number
    from source
),

ranked as (
    select
        *,
        {{ latest_delivery_rank('decision_id') }} as delivery_rank
    from typed
),

final as (
    select
        cast(decision_id as {{ string_type() }}) as decision_id,
        cast(exception_id as {{ string_type() }}) as exception_id,
        cast(action as {{ string_type() }}) as action,
        cast(decided_by as {{ string_type() }}) as decided_by,
        cast(decided_at as timestamp) as decided_at,
        cast(reason as {{ string_type() }}) as reason,
        cast(note as {{ string_type() }}) as note,
        cast(assignee as {{ string_type() }}) as assignee,
        cast(snoozed_until as timestamp) as snoozed_until,
        cast(detail_shown as {{ string_type() }}) as detail_shown,
        load_id,
        source_file,
        extract_date,
        line_number
    from ranked
    where delivery_rank = 1
)

select * from final

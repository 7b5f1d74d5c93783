{#- The exception history: one row per change of an exception's workflow state, appended, never rewritten.
    Each row carries the whole state after the change, so an exception's last row (highest change_sequence)
    is its current state, and the register reads it from here.

    A run appends, per exception, in this order:
    1. the triage decisions not applied yet (stg_triage__decisions), in decided_at order: ack
       (acknowledged), assign (assigned), snooze (snoozed until a time), resolve (resolved, with a reason
       and a note) and reopen (open). A decision that does not fit the state it meets is recorded as
       `refused`, with the reason, and changes nothing: a reopen of an exception that is not resolved,
       anything else on a resolved one, a snooze that ends at or before the as-of time, an unknown
       exception. Whether an exception is resolved before a decision depends only on the last resolve or
       reopen before it (an out-of-place one leaves it as it was), which a window finds without recursion.
    2. what the pipeline observed: `opened` (first detection), `resolved` with reason auto (no longer
       detected), `reopened` (detected again after an auto resolution; after a `fixed` one once the as-of
       time has moved past it; after `accepted` or `false_positive` once the evidence, the detail sentence
       frozen at the resolution, has changed: a sentence only worded anew by a release, its numbers the
       same, is no change, see `earlier_detail` in int_exceptions_detected). The evidence is the detail
       the person saw: the one `order-audit exceptions resolve` read from the published register and wrote
       into the decision (detail_shown); for a decision written by hand without it, the register's as the
       previous run left it (macros/register.sql). Either is newer than the history's last row when the
       numbers changed with no change of state since.
    3. `snooze_expired` when the as-of time reaches snoozed_until.
    4. `rerouted` when a routing rule change gave an exception that is not resolved another rule, owner,
       route or priority.
    Stamps are the run's as-of time (changed_at) and, for decisions, the person's own time (decided_at),
    so a rerun on the same files, rules and decisions appends nothing. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="{{ keep_key_not_null('history_id') }}",
    )
}}
{%- set state_columns = [
    ('to_state', string_type()),
    ('assignee', string_type()),
    ('snoozed_until', 'timestamp'),
    ('resolution_reason', string_type()),
    ('resolution_note', string_type()),
    ('resolved_by', string_type()),
    ('resolved_as_of', 'timestamp'),
    ('evidence', string_type()),
    ('owner_team', string_type()),
    ('routing_rule', string_type()),
    ('route', string_type()),
    ('priority', string_type()),
    ('detail', string_type()),
] -%}
with

clock as (
    select as_of from {{ ref('int_audit_clock') }}
),

detected as (
    select
        exception_id,
        detail,
        earlier_detail,
        owner_team,
        routing_rule,
        route,
        priority
    from {{ ref('int_exceptions_routed') }}
),

shown as (
    {{ register_as_shown() }}
),

decisions as (
    select
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
    from {{ ref('stg_triage__decisions') }}
),

previous as (
    {%- if is_incremental() %}
    select
        {%- for column, column_type in state_columns %}
            {{ column }},
        {%- endfor %}
        change_sequence,
        exception_id
    from (
        select
            *,
            row_number() over (partition by exception_id order by change_sequence desc) as recency
        from {{ this }}
    ) as changes
    where recency = 1
    {%- else %}
        select
            {%- for column, column_type in state_columns %}
                cast(null as {{ column_type }}) as {{ column }},
            {%- endfor %}
            cast(null as int) as change_sequence,
            cast(null as {{ string_type() }}) as exception_id
        where 1 = 0
    {%- endif %}
),

applied_decisions as (
    {%- if is_incremental() %}
    select distinct decision_id from {{ this }} where decision_id is not null
    {%- else %}
        select cast(null as {{ string_type() }}) as decision_id
        where 1 = 0
    {%- endif %}
),

new_decisions as (
    select
        decisions.*,
        row_number() over (
            partition by decisions.exception_id order by decisions.decided_at, decisions.decision_id
        ) as decision_order
    from decisions
    left join applied_decisions on decisions.decision_id = applied_decisions.decision_id
    where applied_decisions.decision_id is null
),

toggles as (
    select
        decision_id,
        max(case when action in ('resolve', 'reopen') then decision_order end) over (
            partition by exception_id order by decision_order rows between unbounded preceding and 1 preceding
        ) as toggle_order
    from new_decisions
),

judged as (
    select
        new_decisions.*,
        case
            when previous.exception_id is null then 'no such exception in the register'
            when
                new_decisions.action = 'reopen'
                and coalesce(toggle.action, case when previous.to_state = 'resolved' then 'resolve' end, 'none') <> 'resolve'
                then 'it is not resolved'
            when
                new_decisions.action <> 'reopen'
                and coalesce(toggle.action, case when previous.to_state = 'resolved' then 'resolve' end) = 'resolve'
                then 'it is already resolved'
            when new_decisions.action = 'snooze' and new_decisions.snoozed_until <= clock.as_of
                then 'snoozed_until is not after the audit as-of time'
        end as refusal
    from new_decisions
    inner join toggles on new_decisions.decision_id = toggles.decision_id
    left join new_decisions as toggle
        on
            new_decisions.exception_id = toggle.exception_id
            and toggles.toggle_order = toggle.decision_order
    left join previous on new_decisions.exception_id = previous.exception_id
    cross join clock
),

valid_steps as (
    select
        judged.*,
        case judged.action
            when 'ack' then 'acknowledged'
            when 'assign' then 'assigned'
            when 'snooze' then 'snoozed'
            when 'resolve' then 'resolved'
            when 'reopen' then 'open'
        end as step_state,
        max(case when judged.action = 'assign' then judged.decision_order end) over (
            partition by judged.exception_id order by judged.decision_order rows between unbounded preceding and current row
        ) as assign_order
    from judged
    where judged.refusal is null
),

decision_states as (
    select
        valid_steps.exception_id,
        valid_steps.decision_order,
        valid_steps.step_state as to_state,
        coalesce(assigning.assignee, previous.assignee) as assignee,
        case when valid_steps.action = 'snooze' then valid_steps.snoozed_until end as snoozed_until,
        case when valid_steps.action = 'resolve' then valid_steps.reason end as resolution_reason,
        case when valid_steps.action = 'resolve' then valid_steps.note end as resolution_note,
        case when valid_steps.action = 'resolve' then valid_steps.decided_by end as resolved_by,
        case when valid_steps.action = 'resolve' then clock.as_of end as resolved_as_of,
        case
            when valid_steps.action = 'resolve' then coalesce(valid_steps.detail_shown, shown.detail, previous.detail)
        end as evidence,
        previous.owner_team,
        previous.routing_rule,
        previous.route,
        previous.priority,
        coalesce(valid_steps.detail_shown, shown.detail, previous.detail) as detail
    from valid_steps
    inner join previous on valid_steps.exception_id = previous.exception_id
    left join shown on valid_steps.exception_id = shown.exception_id
    left join valid_steps as assigning
        on
            valid_steps.exception_id = assigning.exception_id
            and valid_steps.assign_order = assigning.decision_order
    cross join clock
),

decision_rows as (
    select
        judged.exception_id,
        1 as phase,
        judged.decision_order as phase_order,
        case
            when judged.refusal is not null then 'refused'
            when judged.action = 'ack' then 'acknowledged'
            when judged.action = 'assign' then 'assigned'
            when judged.action = 'snooze' then 'snoozed'
            when judged.action = 'resolve' then 'resolved'
            else 'reopened'
        end as change_type,
        judged.decision_id,
        judged.decided_by as changed_by,
        judged.decided_at,
        case when judged.refusal is not null then judged.action || ' refused: ' || judged.refusal else judged.reason end
            as reason,
        judged.note,
        max(case when judged.refusal is null then judged.decision_order end) over (
            partition by judged.exception_id order by judged.decision_order rows between unbounded preceding and current row
        ) as state_order
    from judged
),

decision_changes as (
    select
        decision_rows.exception_id,
        decision_rows.phase,
        decision_rows.phase_order,
        decision_rows.change_type,
        decision_rows.decision_id,
        decision_rows.changed_by,
        decision_rows.decided_at,
        decision_rows.reason,
        {%- for column, column_type in state_columns %}
            case when decision_states.exception_id is not null then decision_states.{{ column }} else previous.{{ column }} end
                as {{ column }},
        {%- endfor %}
        decision_rows.note
    from decision_rows
    left join decision_states
        on
            decision_rows.exception_id = decision_states.exception_id
            and decision_rows.state_order = decision_states.decision_order
    left join previous on decision_rows.exception_id = previous.exception_id
),

after_decisions as (
    select
        {%- for column, column_type in state_columns %}
            {{ column }},
        {%- endfor %}
        exception_id
    from (
        select
            *,
            row_number() over (partition by exception_id order by phase_order desc) as recency
        from decision_changes
        where to_state is not null
    ) as latest
    where recency = 1
    union all
    select
        {%- for column, column_type in state_columns %}
            previous.{{ column }},
        {%- endfor %}
        previous.exception_id
    from previous
    left join decision_changes on previous.exception_id = decision_changes.exception_id
    where decision_changes.exception_id is null
),

observed as (
    select
        coalesce(state.exception_id, detected.exception_id) as exception_id,
        state.to_state as state_before,
        state.assignee,
        state.snoozed_until,
        state.resolution_reason,
        state.resolution_note,
        state.resolved_by,
        state.resolved_as_of,
        state.evidence,
        state.owner_team as previous_owner_team,
        state.routing_rule as previous_routing_rule,
        state.route as previous_route,
        state.priority as previous_priority,
        detected.exception_id is not null as is_detected,
        coalesce(detected.owner_team, state.owner_team) as owner_team,
        coalesce(detected.routing_rule, state.routing_rule) as routing_rule,
        coalesce(detected.route, state.route) as route,
        coalesce(detected.priority, state.priority) as priority,
        coalesce(detected.detail, state.detail) as detail,
        case
            when state.exception_id is null then 'opened'
            when detected.exception_id is null and state.to_state <> 'resolved' then 'resolved'
            when
                detected.exception_id is not null
                and state.to_state = 'resolved'
                and (
                    state.resolution_reason = 'auto'
                    or (state.resolution_reason = 'fixed' and clock.as_of > state.resolved_as_of)
                    or (
                        state.resolution_reason in ('accepted', 'false_positive')
                        and detected.detail <> state.evidence
                        and (detected.earlier_detail is null or detected.earlier_detail <> state.evidence)
                    )
                )
                then 'reopened'
        end as detection_change,
        clock.as_of
    from after_decisions as state
    full outer join detected on state.exception_id = detected.exception_id
    cross join clock
),

after_detection as (
    select
        *,
        case
            when detection_change in ('opened', 'reopened') then 'open'
            when detection_change = 'resolved' then 'resolved'
            else state_before
        end as state_after
    from observed
),

pipeline_changes as (
    select
        exception_id,
        2 as phase,
        0 as phase_order,
        detection_change as change_type,
        cast(null as {{ string_type() }}) as decision_id,
        'pipeline' as changed_by,
        cast(null as timestamp) as decided_at,
        case when detection_change = 'resolved' then 'auto' end as reason,
        case when detection_change = 'resolved' then 'No longer detected.' else detail end as note,
        state_after as to_state,
        case when detection_change = 'opened' then cast(null as {{ string_type() }}) else assignee end as assignee,
        case when detection_change is null then snoozed_until end as snoozed_until,
        case
            when detection_change = 'resolved' then 'auto'
            when detection_change is null then resolution_reason
        end as resolution_reason,
        case
            when detection_change = 'resolved' then 'No longer detected.'
            when detection_change is null then resolution_note
        end as resolution_note,
        case when detection_change = 'resolved' then 'pipeline' when detection_change is null then resolved_by end
            as resolved_by,
        case when detection_change = 'resolved' then as_of when detection_change is null then resolved_as_of end
            as resolved_as_of,
        case when detection_change is null then evidence end as evidence,
        owner_team,
        routing_rule,
        route,
        priority,
        detail
    from after_detection
    where detection_change is not null
    union all
    select
        exception_id,
        3 as phase,
        0 as phase_order,
        'snooze_expired' as change_type,
        cast(null as {{ string_type() }}) as decision_id,
        'pipeline' as changed_by,
        cast(null as timestamp) as decided_at,
        cast(null as {{ string_type() }}) as reason,
        'Snoozed until ' || cast(snoozed_until as varchar(40)) || ' UTC.' as note,
        'open' as to_state,
        assignee,
        cast(null as timestamp) as snoozed_until,
        cast(null as {{ string_type() }}) as resolution_reason,
        cast(null as {{ string_type() }}) as resolution_note,
        cast(null as {{ string_type() }}) as resolved_by,
        cast(null as timestamp) as resolved_as_of,
        cast(null as {{ string_type() }}) as evidence,
        owner_team,
        routing_rule,
        route,
        priority,
        detail
    from after_detection
    where state_after = 'snoozed' and as_of >= snoozed_until
    union all
    select
        exception_id,
        4 as phase,
        0 as phase_order,
        'rerouted' as change_type,
        cast(null as {{ string_type() }}) as decision_id,
        'pipeline' as changed_by,
        cast(null as timestamp) as decided_at,
        cast(null as {{ string_type() }}) as reason,
        'rule ' || coalesce(previous_routing_rule, 'none') || ' -> ' || coalesce(routing_rule, 'none')
        || ': route ' || coalesce(previous_route, 'none') || ' -> ' || coalesce(route, 'none')
        || ', priority ' || coalesce(previous_priority, 'none') || ' -> ' || coalesce(priority, 'none') as note,
        case when state_after = 'snoozed' and as_of >= snoozed_until then 'open' else state_after end as to_state,
        assignee,
        case when not (state_after = 'snoozed' and as_of >= snoozed_until) then snoozed_until end as snoozed_until,
        resolution_reason,
        resolution_note,
        resolved_by,
        resolved_as_of,
        evidence,
        owner_team,
        routing_rule,
        route,
        priority,
        detail
    from after_detection
    where
        is_detected
        and state_after <> 'resolved'
        and coalesce(detection_change, '') <> 'opened'
        and (
            coalesce(previous_routing_rule, '') <> coalesce(routing_rule, '')
            or coalesce(previous_owner_team, '') <> coalesce(owner_team, '')
            or coalesce(previous_route, '') <> coalesce(route, '')
            or coalesce(previous_priority, '') <> coalesce(priority, '')
        )
),

changes as (
    {%- for part in ['decision_changes', 'pipeline_changes'] %}
        select
            {%- for column, column_type in state_columns %}
                {{ column }},
            {%- endfor %}
            exception_id,
            phase,
            phase_order,
            change_type,
            decision_id,
            changed_by,
            decided_at,
            reason,
            note
        from {{ part }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

sequenced as (
    select
        changes.*,
        coalesce(previous.change_sequence, 0)
        + row_number() over (partition by changes.exception_id order by changes.phase, changes.phase_order)
            as change_sequence,
        lag(changes.to_state) over (partition by changes.exception_id order by changes.phase, changes.phase_order)
            as previous_state,
        previous.to_state as prior_state
    from changes
    left join previous on changes.exception_id = previous.exception_id
),

final as (
    select
        cast({{ surrogate_key(['sequenced.exception_id', 'sequenced.change_sequence']) }} as {{ string_type() }})
            as history_id,
        cast(sequenced.exception_id as {{ string_type() }}) as exception_id,
        cast(sequenced.change_sequence as int) as change_sequence,
        cast(sequenced.change_type as {{ string_type() }}) as change_type,
        cast(coalesce(sequenced.previous_state, sequenced.prior_state) as {{ string_type() }}) as from_state,
        cast(sequenced.to_state as {{ string_type() }}) as to_state,
        cast(clock.as_of as timestamp) as changed_at,
        cast(sequenced.changed_by as {{ string_type() }}) as changed_by,
        cast(sequenced.decided_at as timestamp) as decided_at,
        cast(sequenced.decision_id as {{ string_type() }}) as decision_id,
        cast(sequenced.reason as {{ string_type() }}) as reason,
        cast(sequenced.note as {{ string_type() }}) as note,
        cast(sequenced.assignee as {{ string_type() }}) as assignee,
        cast(sequenced.snoozed_until as timestamp) as snoozed_until,
        cast(sequenced.resolution_reason as {{ string_type() }}) as resolution_reason,
        cast(sequenced.resolution_note as {{ string_type() }}) as resolution_note,
        cast(sequenced.resolved_by as {{ string_type() }}) as resolved_by,
        cast(sequenced.resolved_as_of as timestamp) as resolved_as_of,
        cast(sequenced.evidence as {{ string_type() }}) as evidence,
        cast(sequenced.owner_team as {{ string_type() }}) as owner_team,
        cast(sequenced.routing_rule as {{ string_type() }}) as routing_rule,
        cast(sequenced.route as {{ string_type() }}) as route,
        cast(sequenced.priority as {{ string_type() }}) as priority,
        cast(sequenced.detail as {{ string_type() }}) as detail,
        cast('{{ invocation_id }}' as {{ string_type() }}) as run_id
    from sequenced
    cross join clock
)

select * from final

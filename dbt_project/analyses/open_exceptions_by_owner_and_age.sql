-- Exceptions in each owner team's queue (not resolved by a person nor by the pipeline), per code, with how
-- long the oldest has been open since it last opened (hours, as of the audit). `status` alone says only
-- whether the pipeline still detects one: an exception a person accepted is detected still.
select
    e.owner_team,
    e.exception_code,
    e.severity,
    count(*) as open_exceptions,
    min(e.opened_at) as oldest_opened_at,
    max(date_diff('hour', e.opened_at, a.audited_as_of)) as oldest_age_hours
from {{ ref('order_audit_exceptions') }} as e
cross join (select max(audited_as_of) as audited_as_of from {{ ref('fact_order_audit') }}) as a
where e.workflow_state <> 'resolved'
group by e.owner_team, e.exception_code, e.severity
order by e.owner_team, open_exceptions desc, e.exception_code

-- Open exceptions per owner team and code, with how long the oldest has been open (hours, as of the audit).
select
    e.owner_team,
    e.exception_code,
    e.severity,
    count(*) as open_exceptions,
    min(e.first_detected_at) as oldest_detected_at,
    max(date_diff('hour', e.first_detected_at, a.audited_as_of)) as oldest_age_hours
from {{ ref('order_audit_exceptions') }} as e
cross join (select max(audited_as_of) as audited_as_of from {{ ref('fact_order_audit') }}) as a
where e.status = 'open'
group by e.owner_team, e.exception_code, e.severity
order by e.owner_team, open_exceptions desc, e.exception_code

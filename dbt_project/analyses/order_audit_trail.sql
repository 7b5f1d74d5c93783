-- One order's full audit trail across storefront, PSP and WMS (here: the first order in exception).
select
    event_sequence,
    event_at,
    source_system,
    event_type,
    status,
    amount,
    currency,
    sku,
    quantity,
    from_status,
    to_status,
    source_file
from {{ ref('fct_order_audit_events') }}
where order_id = (
    select min(order_id) from {{ ref('fact_order_audit') }} where audit_status = 'exception'
)
order by event_sequence

-- Orders whose customer still owes money (positive payment balance), largest first.
select
    order_id,
    customer_id,
    order_status,
    currency,
    expected_net_amount,
    net_paid_amount,
    payment_balance_amount,
    exception_codes
from {{ ref('fact_order_audit') }}
where payment_balance_amount > 0
order by payment_balance_amount desc, order_id

-- Per order day and currency: order value against money captured, refunded and still at risk.
select
    order_date,
    currency,
    orders,
    order_value_amount,
    captured_amount,
    refunded_amount,
    net_paid_amount,
    money_at_risk_amount,
    orders_in_exception,
    orders_in_warning
from {{ ref('agg_reconciliation_daily') }}
order by order_date, currency

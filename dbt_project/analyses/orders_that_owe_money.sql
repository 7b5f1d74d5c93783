-- Orders whose customer still owes money: UNDERPAID or PAYMENT_MISSING, i.e. a payment balance that is
-- positive at the currency's minor unit (a balance below it, such as 0.4 JPY, is not owed), largest
-- first within each currency (amounts are not converted).
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
where exception_codes like '%UNDERPAID%' or exception_codes like '%PAYMENT_MISSING%'
order by currency, payment_balance_amount desc, order_id

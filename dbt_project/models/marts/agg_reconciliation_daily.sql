{#- Dashboard grain: per order-created day (UTC) and currency, the money and the exceptions. -#}
with

orders as (
    select
        order_id,
        currency,
        order_created_at,
        order_total_amount,
        captured_amount,
        psp_refunded_amount,
        net_paid_amount,
        payment_balance_amount,
        audit_status
    from {{ ref('fact_order_audit') }}
),

exceptions as (
    select
        order_id,
        severity
    from {{ ref('order_audit_exceptions') }}
    where status = 'open' and entity_type = 'order'
),

exceptions_per_order as (
    select
        order_id,
        sum(case when severity = 'error' then 1 else 0 end) as error_exceptions,
        sum(case when severity = 'warning' then 1 else 0 end) as warning_exceptions
    from exceptions
    group by order_id
),

final as (
    select
        cast(cast(orders.order_created_at as date) as date) as order_date,
        cast(orders.currency as {{ string_type() }}) as currency,
        cast(count(*) as bigint) as orders,
        cast(sum(orders.order_total_amount) as decimal(38, 6)) as order_value_amount,
        cast(sum(orders.captured_amount) as decimal(38, 6)) as captured_amount,
        cast(sum(orders.psp_refunded_amount) as decimal(38, 6)) as refunded_amount,
        cast(sum(orders.net_paid_amount) as decimal(38, 6)) as net_paid_amount,
        cast(sum(abs({{ round_to_minor_unit('orders.payment_balance_amount', 'orders.currency') }})) as decimal(38, 6))
            as money_at_risk_amount,
        cast(sum(case when orders.audit_status <> 'ok' then 1 else 0 end) as bigint) as orders_with_exceptions,
        cast(sum(case when orders.audit_status = 'exception' then 1 else 0 end) as bigint) as orders_in_exception,
        cast(sum(case when orders.audit_status = 'warning' then 1 else 0 end) as bigint) as orders_in_warning,
        cast(coalesce(sum(exceptions_per_order.error_exceptions), 0) as bigint) as error_exceptions,
        cast(coalesce(sum(exceptions_per_order.warning_exceptions), 0) as bigint) as warning_exceptions
    from orders
    left join exceptions_per_order on orders.order_id = exceptions_per_order.order_id
    group by cast(orders.order_created_at as date), orders.currency
)

select * from final

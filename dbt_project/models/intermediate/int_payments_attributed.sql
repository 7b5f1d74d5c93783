{#- Every payment event (current state) with the clean order it belongs to, if any. -#}
with

payments as (
    select
        payment_id,
        order_id,
        event_type,
        amount,
        currency,
        payment_status,
        processed_at,
        psp_reference,
        payment_method,
        load_id,
        source_file
    from {{ ref('stg_psp__payments') }}
),

orders as (
    select
        order_id,
        currency as order_currency
    from {{ ref('int_orders_current') }}
),

final as (
    select
        payments.payment_id,
        payments.order_id,
        payments.event_type,
        payments.amount,
        payments.currency,
        payments.payment_status,
        payments.processed_at,
        payments.psp_reference,
        payments.payment_method,
        orders.order_id is not null as has_order,
        orders.order_currency,
        payments.payment_status = 'succeeded' as is_succeeded,
        orders.order_id is not null
        and payments.payment_status = 'succeeded'
        and payments.currency = orders.order_currency as counts_in_order_sums,
        payments.load_id,
        payments.source_file,
        {{ processed_through([
            (ref('stg_psp__payments'), ['payments']),
            (ref('int_orders_current'), ['orders']),
        ]) }} as loaded_through
    from payments
    left join orders on payments.order_id = orders.order_id
)

select * from final

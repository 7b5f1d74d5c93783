{#- One row per order in its current state: every audited amount and its open exception codes. -#}
with

orders as (
    select * from {{ ref('int_orders_evaluated') }}
),

open_exceptions as (
    select
        order_id,
        exception_code,
        severity
    from {{ ref('int_exceptions_detected') }}
    where entity_type = 'order'
),

codes_per_order as (
    select
        order_id,
        {{ sorted_csv_agg('exception_code') }} as exception_codes,
        count(distinct exception_code) as exception_count,
        max(case when severity = 'error' then 1 else 0 end) as has_error
    from open_exceptions
    group by order_id
),

final as (
    select
        cast(orders.order_id as {{ string_type() }}) as order_id,
        cast(orders.customer_id as {{ string_type() }}) as customer_id,
        cast({{ sha256_hex('lower(orders.customer_email)') }} as {{ string_type() }}) as customer_email_sha256,
        cast(orders.currency as {{ string_type() }}) as currency,
        cast(orders.channel as {{ string_type() }}) as channel,
        cast(orders.order_status as {{ string_type() }}) as order_status,
        cast(orders.created_at as timestamp) as order_created_at,
        cast(orders.updated_at as timestamp) as order_updated_at,
        cast(orders.version_count as integer) as order_version_count,
        cast(orders.line_count as integer) as line_count,
        cast(orders.units_ordered as bigint) as units_ordered,
        cast(orders.total_amount as decimal(38, 6)) as order_total_amount,
        cast(orders.computed_total_amount as decimal(38, 6)) as computed_total_amount,
        cast(orders.refunded_amount as decimal(38, 6)) as order_refunded_amount,
        cast(orders.authorized_amount as decimal(38, 6)) as authorized_amount,
        cast(orders.captured_amount as decimal(38, 6)) as captured_amount,
        cast(orders.psp_refunded_amount as decimal(38, 6)) as psp_refunded_amount,
        cast(orders.chargeback_amount as decimal(38, 6)) as chargeback_amount,
        cast(orders.net_paid_amount as decimal(38, 6)) as net_paid_amount,
        cast(orders.expected_net_amount as decimal(38, 6)) as expected_net_amount,
        cast(orders.payment_balance_amount as decimal(38, 6)) as payment_balance_amount,
        cast(orders.first_captured_at as timestamp) as first_captured_at,
        cast(orders.units_shipped as bigint) as units_shipped,
        cast(orders.units_returned as bigint) as units_returned,
        cast(orders.first_shipped_at as timestamp) as first_shipped_at,
        cast(coalesce(codes_per_order.exception_codes, '') as {{ string_type() }}) as exception_codes,
        cast(coalesce(codes_per_order.exception_count, 0) as integer) as exception_count,
        cast(
            case
                when codes_per_order.has_error = 1 then 'exception'
                when codes_per_order.exception_count > 0 then 'warning'
                else 'ok'
            end as {{ string_type() }}
        ) as audit_status,
        cast(orders.as_of as timestamp) as audited_as_of
    from orders
    left join codes_per_order on orders.order_id = codes_per_order.order_id
)

select * from final

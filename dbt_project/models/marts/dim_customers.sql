{#- One row per customer seen on a current order. The e-mail address is personal data: only its
    SHA-256 (of the lower-cased address) is exposed. -#}
with

orders as (
    select
        customer_id,
        customer_email_sha256,
        order_id,
        order_created_at,
        audit_status
    from {{ ref('fact_order_audit') }}
),

final as (
    select
        cast(customer_id as {{ string_type() }}) as customer_id,
        cast(max(customer_email_sha256) as {{ string_type() }}) as customer_email_sha256,
        cast(count(*) as bigint) as orders,
        cast(min(order_created_at) as timestamp) as first_order_at,
        cast(max(order_created_at) as timestamp) as last_order_at,
        cast(sum(case when audit_status <> 'ok' then 1 else 0 end) as bigint) as orders_with_exceptions
    from orders
    group by customer_id
)

select * from final

{#- The lines of each order's current version, with the order's currency and created_at. -#}
with

orders as (
    select
        order_id,
        currency,
        created_at,
        updated_at
    from {{ ref('int_order_versions_sequenced') }}
    where is_current
),

lines as (
    select
        order_id,
        updated_at,
        line_index,
        line_id,
        sku,
        quantity,
        unit_price,
        line_discount_amount
    from {{ ref('stg_storefront__order_lines') }}
),

final as (
    select
        lines.order_id,
        lines.line_id,
        lines.line_index,
        lines.sku,
        lines.quantity,
        lines.unit_price,
        lines.line_discount_amount,
        orders.currency,
        orders.created_at
    from lines
    inner join orders
        on
            lines.order_id = orders.order_id
            and lines.updated_at = orders.updated_at
)

select * from final

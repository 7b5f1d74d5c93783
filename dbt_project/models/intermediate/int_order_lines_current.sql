{#- The lines of each order's current version, with the order's currency and created_at.
    Incremental by order (macros/incremental.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rows_of_rewritten_orders(ref('int_order_versions_sequenced')) }}",
    )
}}
with

orders as (
    select
        order_id,
        currency,
        created_at,
        updated_at,
        loaded_through
    from {{ ref('int_order_versions_sequenced') }}
    where
        is_current
    {%- if keyed_incremental() %}
        and order_id in ({{ orders_rewritten_in(ref('int_order_versions_sequenced')) }})
        {%- endif %}
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
    {%- if keyed_incremental() %}
    where order_id in (select order_id from orders)
    {%- endif %}
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
        orders.created_at,
        {#- the lines as staging had taken them in: a build before it did stamps the order to be rebuilt -#}
        least(
            orders.loaded_through,
            {{ taken_in_through(ref('stg_storefront__order_lines'), ['orders']) }}
        ) as loaded_through
    from lines
    inner join orders
        on
            lines.order_id = orders.order_id
            and lines.updated_at = orders.updated_at
)

select * from final

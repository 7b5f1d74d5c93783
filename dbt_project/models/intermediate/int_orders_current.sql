{#- The current version of every order with its line totals (lines of that version only).
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

current_versions as (
    select
        order_id,
        customer_id,
        customer_email,
        order_status,
        currency,
        created_at,
        updated_at,
        order_discount_amount,
        shipping_amount,
        tax_amount,
        total_amount,
        refunded_amount,
        channel,
        version_count,
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
        quantity,
        unit_price,
        line_discount_amount
    from {{ ref('stg_storefront__order_lines') }}
    {%- if keyed_incremental() %}
    where order_id in (select order_id from current_versions)
    {%- endif %}
),

line_totals as (
    select
        lines.order_id,
        count(*) as line_count,
        sum(lines.quantity) as units_ordered,
        sum(lines.quantity * lines.unit_price - lines.line_discount_amount) as lines_net_amount
    from lines
    inner join current_versions
        on
            lines.order_id = current_versions.order_id
            and lines.updated_at = current_versions.updated_at
    group by lines.order_id
),

final as (
    select
        current_versions.order_id,
        current_versions.customer_id,
        current_versions.customer_email,
        current_versions.order_status,
        current_versions.currency,
        current_versions.created_at,
        current_versions.updated_at,
        current_versions.version_count,
        line_totals.line_count,
        line_totals.units_ordered,
        current_versions.total_amount,
        line_totals.lines_net_amount
        - current_versions.order_discount_amount
        + current_versions.shipping_amount
        + current_versions.tax_amount as computed_total_amount,
        current_versions.refunded_amount,
        current_versions.channel,
        current_versions.order_status in (
            'paid', 'partially_fulfilled', 'fulfilled', 'partially_refunded', 'refunded'
        ) as is_paid_or_later,
        {#- the lines as staging had taken them in: a build before it did stamps the order to be rebuilt -#}
        least(
            current_versions.loaded_through,
            {{ taken_in_through(ref('stg_storefront__order_lines'), ['orders']) }}
        ) as loaded_through
    from current_versions
    inner join line_totals on current_versions.order_id = line_totals.order_id
)

select * from final

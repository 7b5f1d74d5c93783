{#- Every clean order version in updated_at order, with the status before it and the current flag.
    Incremental by order (macros/incremental.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rows_of_rewritten_orders(ref('stg_storefront__orders')) }}",
    )
}}
with

versions as (
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
        load_id,
        source_file,
        line_number,
        loaded_through
    from {{ ref('stg_storefront__orders') }}
    {%- if keyed_incremental() %}
    where order_id in ({{ orders_rewritten_in(ref('stg_storefront__orders')) }})
    {%- endif %}
),

final as (
    select
        order_id,
        customer_id,
        customer_email,
        order_status,
        lag(order_status) over (partition by order_id order by updated_at) as previous_status,
        currency,
        created_at,
        updated_at,
        order_discount_amount,
        shipping_amount,
        tax_amount,
        total_amount,
        refunded_amount,
        channel,
        row_number() over (partition by order_id order by updated_at) as version_number,
        count(*) over (partition by order_id) as version_count,
        load_id,
        source_file,
        line_number,
        loaded_through
    from versions
)

select
    order_id,
    customer_id,
    customer_email,
    order_status,
    previous_status,
    currency,
    created_at,
    updated_at,
    order_discount_amount,
    shipping_amount,
    tax_amount,
    total_amount,
    refunded_amount,
    channel,
    version_number,
    version_count,
    version_number = version_count as is_current,
    load_id,
    source_file,
    line_number,
    loaded_through
from final

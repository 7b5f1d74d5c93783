{#- One row per order version (order_id, updated_at as a UTC instant); where several lines carry the
    same version, the later delivery (extract date, file name, line number) wins. Incremental by order:
    a run re-resolves every version of each order that new loads touch (macros/incremental.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        post_hook="{{ delete_rows_without_raw_row(source('raw', 'orders')) }}",
    )
}}
with

{% if keyed_incremental() -%}
touched as (
    {{ touched_keys(source('raw', 'orders'), 'order_id', trimmed_id('order_id')) }}
),

{% endif -%}
source as (
    select
        load_id,
        source_file,
        extract_date,
        line_number,
        order_id,
        customer_id,
        customer_email,
        status,
        currency,
        created_at,
        updated_at,
        discount_amount,
        shipping_amount,
        tax_amount,
        total_amount,
        refunded_amount,
        channel
    from {{ source('raw', 'orders') }}
    {%- if keyed_incremental() %}
    where {{ trimmed_id('order_id') }} in (select order_id from touched)
    {%- endif %}
),

typed as (
    select
        {{ trimmed_id('order_id') }} as order_id,
        {{ trimmed_id('customer_id') }} as customer_id,
        nullif(trim(customer_email), '') as customer_email,
        status as order_status,
        currency,
        {{ utc_timestamp('created_at') }} as created_at,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ money('discount_amount', optional=true) }} as order_discount_amount,
        {{ money('shipping_amount', optional=true) }} as shipping_amount,
        {{ money('tax_amount', optional=true) }} as tax_amount,
        {{ money('total_amount') }} as total_amount,
        {{ money('refunded_amount', optional=true) }} as refunded_amount,
        nullif(trim(channel), '') as channel,
        load_id,
        source_file,
        extract_date,
        line_number
    from source
),

ranked as (
    select
        *,
        {{ latest_delivery_rank('order_id, updated_at') }} as delivery_rank
    from typed
),

final as (
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
        extract_date,
        line_number,
        {{ loaded_through() }} as loaded_through
    from ranked
    where delivery_rank = 1
)

select * from final

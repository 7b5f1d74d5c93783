{#- One row per movement_id: the later delivery wins. stock_delta is the signed on-hand change.
    Incremental: see macros/incremental.sql. -#}
{{
    config(
        materialized='incremental',
        unique_key='movement_id',
        incremental_strategy=audit_incremental_strategy(),
        post_hook="{{ delete_rows_without_raw_row(source('raw', 'inventory_movements')) }}",
    )
}}
with

{% if keyed_incremental() -%}
touched as (
    {{ touched_keys(source('raw', 'inventory_movements'), 'movement_id', trimmed_id('movement_id')) }}
),

{% endif -%}
source as (
    select
        load_id,
        source_file,
        extract_date,
        line_number,
        movement_id,
        sku,
        warehouse_id,
        movement_type,
        quantity,
        order_id,
        occurred_at
    from {{ source('raw', 'inventory_movements') }}
    {%- if keyed_incremental() %}
    where {{ trimmed_id('movement_id') }} in (select movement_id from touched)
    {%- endif %}
),

typed as (
    select
        {{ trimmed_id('movement_id') }} as movement_id,
        {{ trimmed_id('sku') }} as sku,
        {{ trimmed_id('warehouse_id') }} as warehouse_id,
        movement_type,
        cast(trim(quantity) as bigint) as quantity,
        {{ trimmed_id('order_id') }} as order_id,
        {{ utc_timestamp('occurred_at') }} as occurred_at,
        load_id,
        source_file,
        extract_date,
        line_number
    from source
),

ranked as (
    select
        *,
        {{ latest_delivery_rank('movement_id') }} as delivery_rank
    from typed
),

final as (
    select
        movement_id,
        sku,
        warehouse_id,
        movement_type,
        quantity,
        case
            when movement_type in ('receipt', 'return', 'adjustment') then quantity
            when movement_type = 'shipment' then -quantity
            else cast(0 as bigint)
        end as stock_delta,
        order_id,
        occurred_at,
        load_id,
        source_file,
        extract_date,
        line_number,
        {{ loaded_through() }} as loaded_through
    from ranked
    where delivery_rank = 1
)

select * from final

{#- One row per (sku, warehouse_id, snapshot_date): the later delivery wins. -#}
with

source as (
    select
        load_id,
        source_file,
        extract_date,
        line_number,
        sku,
        warehouse_id,
        on_hand,
        snapshot_date
    from {{ source('raw', 'inventory_levels') }}
),

typed as (
    select
        {{ trimmed_id('sku') }} as sku,
        {{ trimmed_id('warehouse_id') }} as warehouse_id,
        cast(trim(on_hand) as bigint) as on_hand,
        cast(trim(snapshot_date) as date) as snapshot_date,
        load_id,
        source_file,
        extract_date,
        line_number
    from source
),

ranked as (
    select
        *,
        {{ latest_delivery_rank('sku, warehouse_id, snapshot_date') }} as delivery_rank
    from typed
),

final as (
    select
        sku,
        warehouse_id,
        on_hand,
        snapshot_date,
        load_id,
        source_file,
        extract_date,
        line_number
    from ranked
    where delivery_rank = 1
)

select * from final

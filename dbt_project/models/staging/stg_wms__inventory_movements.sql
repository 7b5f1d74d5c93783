{#- One row per movement_id: the later delivery wins. stock_delta is the signed on-hand change. -#}
with

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
        row_number() over (
            partition by movement_id
            order by extract_date desc, source_file desc, line_number desc
        ) as delivery_rank
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
        line_number
    from ranked
    where delivery_rank = 1
)

select * from final

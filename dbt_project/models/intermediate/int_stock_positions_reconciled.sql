{#- Each WMS end-of-day snapshot against the on-hand computed from movements before the next day's
    midnight UTC. Snapshots are merged into the movement stream as markers that sort before any
    movement at the same instant, so one running sum gives both (no engine-specific as-of join). -#}
with

snapshots as (
    select
        sku,
        warehouse_id,
        snapshot_date,
        on_hand,
        {{ next_day_midnight('snapshot_date') }} as cutoff_at
    from {{ ref('stg_wms__inventory_levels') }}
),

movements as (
    select
        sku,
        warehouse_id,
        movement_id,
        stock_delta,
        occurred_at
    from {{ ref('stg_wms__inventory_movements') }}
),

stream as (
    select
        sku,
        warehouse_id,
        occurred_at as stream_at,
        1 as stream_rank,
        movement_id as stream_key,
        stock_delta,
        cast(null as date) as snapshot_date,
        cast(null as bigint) as reported_on_hand
    from movements
    union all
    select
        sku,
        warehouse_id,
        cutoff_at as stream_at,
        0 as stream_rank,
        cast(snapshot_date as varchar(10)) as stream_key,
        cast(0 as bigint) as stock_delta,
        snapshot_date,
        on_hand as reported_on_hand
    from snapshots
),

running as (
    select
        sku,
        warehouse_id,
        snapshot_date,
        reported_on_hand,
        stream_rank,
        sum(stock_delta) over (
            partition by sku, warehouse_id
            order by stream_at, stream_rank, stream_key
            rows between unbounded preceding and current row
        ) as computed_on_hand
    from stream
),

final as (
    select
        sku,
        warehouse_id,
        snapshot_date,
        reported_on_hand,
        coalesce(computed_on_hand, 0) as computed_on_hand,
        reported_on_hand <> coalesce(computed_on_hand, 0) as is_mismatch
    from running
    where stream_rank = 0
)

select * from final

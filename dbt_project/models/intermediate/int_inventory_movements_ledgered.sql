{#- The running on-hand of every (sku, warehouse_id), in (occurred_at, movement_id) order. -#}
with

movements as (
    select
        movement_id,
        sku,
        warehouse_id,
        movement_type,
        quantity,
        stock_delta,
        order_id,
        occurred_at
    from {{ ref('stg_wms__inventory_movements') }}
),

final as (
    select
        movement_id,
        sku,
        warehouse_id,
        movement_type,
        quantity,
        stock_delta,
        order_id,
        occurred_at,
        sum(stock_delta) over (
            partition by sku, warehouse_id
            order by occurred_at, movement_id
            rows between unbounded preceding and current row
        ) as on_hand_after
    from movements
)

select * from final

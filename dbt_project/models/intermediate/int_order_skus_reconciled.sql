{#- Per (order, sku): units ordered on the current version vs gross units shipped and returned. -#}
with

ordered as (
    select
        order_id,
        sku,
        sum(quantity) as units_ordered
    from {{ ref('int_order_lines_current') }}
    group by order_id, sku
),

orders as (
    select order_id from {{ ref('int_orders_current') }}
),

moved as (
    select
        ledger.order_id,
        ledger.sku,
        sum(case when ledger.movement_type = 'shipment' then ledger.quantity else 0 end) as units_shipped,
        sum(case when ledger.movement_type = 'return' then ledger.quantity else 0 end) as units_returned,
        sum(case when ledger.movement_type = 'shipment' then 1 else 0 end) as shipment_count,
        min(case when ledger.movement_type = 'shipment' then ledger.occurred_at end) as first_shipped_at,
        sum(case when ledger.movement_type = 'shipment' and ledger.on_hand_after < 0 then 1 else 0 end)
            as oversold_shipments,
        min(case when ledger.movement_type = 'shipment' and ledger.on_hand_after < 0 then ledger.on_hand_after end)
            as lowest_oversold_on_hand
    from {{ ref('int_inventory_movements_ledgered') }} as ledger
    inner join orders on ledger.order_id = orders.order_id
    group by ledger.order_id, ledger.sku
),

final as (
    select
        coalesce(ordered.order_id, moved.order_id) as order_id,
        coalesce(ordered.sku, moved.sku) as sku,
        coalesce(ordered.units_ordered, 0) as units_ordered,
        coalesce(moved.units_shipped, 0) as units_shipped,
        coalesce(moved.units_returned, 0) as units_returned,
        coalesce(moved.shipment_count, 0) as shipment_count,
        moved.first_shipped_at,
        coalesce(moved.oversold_shipments, 0) as oversold_shipments,
        moved.lowest_oversold_on_hand
    from ordered
    full outer join moved
        on
            ordered.order_id = moved.order_id
            and ordered.sku = moved.sku
)

select * from final

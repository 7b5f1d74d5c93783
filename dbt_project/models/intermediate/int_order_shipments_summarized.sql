{#- Per order: shipment and return totals and the per-sku fulfillment findings. -#}
with

skus as (
    select
        order_id,
        sku,
        units_ordered,
        units_shipped,
        units_returned,
        shipment_count,
        first_shipped_at,
        oversold_shipments,
        lowest_oversold_on_hand
    from {{ ref('int_order_skus_reconciled') }}
),

final as (
    select
        order_id,
        sum(units_shipped) as units_shipped,
        sum(units_returned) as units_returned,
        sum(shipment_count) as shipment_count,
        min(first_shipped_at) as first_shipped_at,
        sum(case when units_shipped - units_returned > units_ordered then 1 else 0 end) as over_shipped_skus,
        min(case when units_shipped - units_returned > units_ordered then sku end) as first_over_shipped_sku,
        sum(case when units_shipped < units_ordered then 1 else 0 end) as under_shipped_skus,
        min(case when units_shipped < units_ordered then sku end) as first_under_shipped_sku,
        sum(case when units_shipped - units_returned > 0 then 1 else 0 end) as net_shipped_skus,
        sum(oversold_shipments) as oversold_shipments,
        min(case when oversold_shipments > 0 then sku end) as first_oversold_sku,
        min(lowest_oversold_on_hand) as lowest_oversold_on_hand
    from skus
    group by order_id
)

select * from final

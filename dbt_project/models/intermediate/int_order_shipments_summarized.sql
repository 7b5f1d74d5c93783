{#- Per order: shipment and return totals and the per-sku fulfillment findings, with the units of the
    first sku each finding names (its detail sentence quotes them). -#}
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
        lowest_oversold_on_hand,
        units_shipped - units_returned > units_ordered as is_over_shipped,
        units_shipped < units_ordered as is_under_shipped
    from {{ ref('int_order_skus_reconciled') }}
),

per_order as (
    select
        order_id,
        sum(units_shipped) as units_shipped,
        sum(units_returned) as units_returned,
        sum(shipment_count) as shipment_count,
        min(first_shipped_at) as first_shipped_at,
        sum(case when is_over_shipped then 1 else 0 end) as over_shipped_skus,
        min(case when is_over_shipped then sku end) as first_over_shipped_sku,
        sum(case when is_under_shipped then 1 else 0 end) as under_shipped_skus,
        min(case when is_under_shipped then sku end) as first_under_shipped_sku,
        sum(case when units_shipped - units_returned > 0 then 1 else 0 end) as net_shipped_skus,
        min(case when units_shipped - units_returned > 0 then sku end) as first_net_shipped_sku,
        sum(oversold_shipments) as oversold_shipments,
        min(case when oversold_shipments > 0 then sku end) as first_oversold_sku,
        min(lowest_oversold_on_hand) as lowest_oversold_on_hand
    from skus
    group by order_id
),

over_shipped as (
    select
        order_id,
        sku,
        units_ordered,
        units_shipped,
        units_returned
    from skus
    where is_over_shipped
),

under_shipped as (
    select
        order_id,
        sku,
        units_ordered,
        units_shipped
    from skus
    where is_under_shipped
),

net_shipped as (
    select
        order_id,
        sku,
        units_shipped,
        units_returned
    from skus
    where units_shipped - units_returned > 0
),

final as (
    select
        per_order.order_id,
        per_order.units_shipped,
        per_order.units_returned,
        per_order.shipment_count,
        per_order.first_shipped_at,
        per_order.over_shipped_skus,
        per_order.first_over_shipped_sku,
        over_shipped.units_ordered as first_over_shipped_sku_units_ordered,
        over_shipped.units_shipped as first_over_shipped_sku_units_shipped,
        over_shipped.units_returned as first_over_shipped_sku_units_returned,
        per_order.under_shipped_skus,
        per_order.first_under_shipped_sku,
        under_shipped.units_ordered as first_under_shipped_sku_units_ordered,
        under_shipped.units_shipped as first_under_shipped_sku_units_shipped,
        per_order.net_shipped_skus,
        per_order.first_net_shipped_sku,
        net_shipped.units_shipped as first_net_shipped_sku_units_shipped,
        net_shipped.units_returned as first_net_shipped_sku_units_returned,
        per_order.oversold_shipments,
        per_order.first_oversold_sku,
        per_order.lowest_oversold_on_hand
    from per_order
    left join over_shipped
        on
            per_order.order_id = over_shipped.order_id
            and per_order.first_over_shipped_sku = over_shipped.sku
    left join under_shipped
        on
            per_order.order_id = under_shipped.order_id
            and per_order.first_under_shipped_sku = under_shipped.sku
    left join net_shipped
        on
            per_order.order_id = net_shipped.order_id
            and per_order.first_net_shipped_sku = net_shipped.sku
)

select * from final

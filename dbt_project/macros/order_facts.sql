{#- The per-order facts int_orders_assessed reads, as macros so that its incremental branch computes them
    for the orders it re-assesses only: DuckDB does not push a semi-join on those orders below the
    GROUP BYs (and the stock ledger's window) of the views that call these macros without `orders`.
    `orders`: a query of the order ids to keep (none: every order). -#}

{#- The running on-hand of every (sku, warehouse_id), in (occurred_at, movement_id) order. -#}
{#- `stock`: a query of the (sku, warehouse_id) pairs to keep, each whole (none: all). -#}
{% macro inventory_movements_ledgered(stock=none) -%}
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
    from {{ ref('stg_wms__inventory_movements') }} as staged
    {%- if stock %}
    where exists (
        select 1 from ({{ stock }}) as kept
        where kept.sku is not distinct from staged.sku and kept.warehouse_id is not distinct from staged.warehouse_id
    )
    {%- endif %}
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
{%- endmacro %}

{#- Per (order, sku): units ordered on the current version vs gross units shipped and returned. -#}
{% macro order_skus_reconciled(orders=none) -%}
with

ordered as (
    select
        order_id,
        sku,
        sum(quantity) as units_ordered
    from {{ ref('int_order_lines_current') }}
    {%- if orders %}
    where order_id in ({{ orders }})
    {%- endif %}
    group by order_id, sku
),

orders as (
    select order_id from {{ ref('int_orders_current') }}
    {%- if orders %}
    where order_id in ({{ orders }})
    {%- endif %}
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
    {%- if orders %}
    from ({{ inventory_movements_ledgered(stock=stock_of_orders(orders)) }}) as ledger
    {%- else %}
    from {{ ref('int_inventory_movements_ledgered') }} as ledger
    {%- endif %}
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
{%- endmacro %}

{#- Per order: shipment and return totals and the per-sku fulfillment findings, with the units of the
    first sku each finding names (its detail sentence quotes them). -#}
{% macro order_shipments_summarized(orders=none) -%}
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
    {%- if orders %}
    from ({{ order_skus_reconciled(orders) }}) as reconciled
    {%- else %}
    from {{ ref('int_order_skus_reconciled') }}
    {%- endif %}
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
{%- endmacro %}

{#- Per order: succeeded payment sums in the order currency, first capture in any currency, and the
    payment-side facts the rules need, with the first foreign-currency event (lowest payment_id) that
    CURRENCY_MISMATCH's detail quotes. One row per order that has any payment event. -#}
{% macro order_payments_summed(orders=none) -%}
with

payments as (
    select
        payment_id,
        order_id,
        event_type,
        amount,
        currency,
        processed_at,
        psp_reference,
        is_succeeded,
        counts_in_order_sums,
        order_currency
    from {{ ref('int_payments_attributed') }}
    where has_order
    {%- if orders %}
    and order_id in ({{ orders }})
    {%- endif %}
),

duplicate_references as (
    select
        order_id,
        psp_reference,
        count(*) as capture_count
    from payments
    where is_succeeded and event_type = 'capture' and psp_reference is not null
    group by order_id, psp_reference
    having count(*) >= 2
),

duplicates_per_order as (
    select
        order_id,
        count(*) as duplicated_reference_count,
        min(psp_reference) as first_duplicated_reference,
        max(capture_count) as max_captures_per_reference
    from duplicate_references
    group by order_id
),

sums as (
    select
        order_id,
        sum(case when counts_in_order_sums and event_type = 'authorization' then amount else 0 end)
            as authorized_amount,
        sum(case when counts_in_order_sums and event_type = 'capture' then amount else 0 end) as captured_amount,
        sum(case when counts_in_order_sums and event_type = 'refund' then amount else 0 end)
            as psp_refunded_amount,
        sum(case when counts_in_order_sums and event_type = 'chargeback' then amount else 0 end)
            as chargeback_amount,
        min(case when is_succeeded and event_type = 'capture' then processed_at end) as first_captured_at,
        sum(case when is_succeeded and currency <> order_currency then 1 else 0 end) as foreign_currency_events,
        min(case when is_succeeded and currency <> order_currency then currency end) as first_foreign_currency,
        min(case when is_succeeded and currency <> order_currency then payment_id end) as first_foreign_payment_id,
        min(case when is_succeeded and event_type = 'chargeback' then payment_id end) as first_chargeback_payment_id,
        sum(case when is_succeeded and event_type = 'chargeback' then 1 else 0 end) as chargeback_events
    from payments
    group by order_id
),

first_foreign_events as (
    select
        order_id,
        payment_id,
        event_type,
        amount,
        currency
    from payments
    where is_succeeded and currency <> order_currency
),

final as (
    select
        sums.order_id,
        sums.authorized_amount,
        sums.captured_amount,
        sums.psp_refunded_amount,
        sums.chargeback_amount,
        sums.first_captured_at,
        sums.foreign_currency_events,
        sums.first_foreign_currency,
        sums.first_foreign_payment_id,
        first_foreign_events.event_type as first_foreign_event_type,
        first_foreign_events.amount as first_foreign_amount,
        first_foreign_events.currency as first_foreign_payment_currency,
        sums.first_chargeback_payment_id,
        sums.chargeback_events,
        coalesce(duplicates_per_order.duplicated_reference_count, 0) as duplicated_reference_count,
        duplicates_per_order.first_duplicated_reference,
        duplicates_per_order.max_captures_per_reference
    from sums
    left join duplicates_per_order on sums.order_id = duplicates_per_order.order_id
    left join first_foreign_events
        on
            sums.order_id = first_foreign_events.order_id
            and sums.first_foreign_payment_id = first_foreign_events.payment_id
)

select * from final
{%- endmacro %}

{#- The (sku, warehouse_id) pairs the orders' movements name: the stock whose ledger their shipments need. -#}
{% macro stock_of_orders(orders) -%}
    select distinct sku, warehouse_id from {{ ref('stg_wms__inventory_movements') }} where order_id in ({{ orders }})
{%- endmacro %}

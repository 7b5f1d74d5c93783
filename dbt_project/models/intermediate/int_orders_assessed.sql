{#- One row per current order with every audited amount and one boolean per order-level rule of
    audit_mart.md that does not depend on the as-of time (int_orders_evaluated adds FULFILLMENT_DELAYED),
    plus the numbers each rule's detail sentence quotes. Incremental by order: a run re-assesses only the
    orders whose inputs new loads can have changed (orders_to_assess in macros/incremental.sql). -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rows_of_vanished_orders(ref('int_orders_current')) }}",
    )
}}
-- depends_on: {{ source('raw', 'payments') }}
-- depends_on: {{ source('raw', 'inventory_movements') }}
-- depends_on: {{ source('raw', 'products') }}
{%- set keyed = keyed_incremental() %}
{#- the keyed branch computes the payment and shipment facts of the orders it re-assesses only -#}
{%- set assessed_orders = 'select order_id from orders_to_assess' %}
{%- set payments_of_orders = '(' ~ order_payments_summed(orders=assessed_orders) ~ ') as facts' if keyed
    else ref('int_order_payments_summed') %}
{%- set shipments_of_orders = '(' ~ order_shipments_summarized(orders=assessed_orders) ~ ') as facts' if keyed
    else ref('int_order_shipments_summarized') %}
with

{% if keyed -%}
{#- DuckDB's branch only (Spark's strategy is insert_overwrite): `as materialized` computes it once -#}
orders_to_assess as materialized (
    {{ orders_to_assess() }}
),

{% endif -%}
orders as (
    select
        order_id,
        customer_id,
        customer_email,
        order_status,
        currency,
        created_at,
        updated_at,
        version_count,
        line_count,
        units_ordered,
        total_amount,
        computed_total_amount,
        refunded_amount,
        channel,
        is_paid_or_later
    from {{ ref('int_orders_current') }}
    {%- if keyed %}
    where order_id in (select order_id from orders_to_assess)
    {%- endif %}
),

payments as (
    select
        order_id,
        authorized_amount,
        captured_amount,
        psp_refunded_amount,
        chargeback_amount,
        first_captured_at,
        foreign_currency_events,
        first_foreign_currency,
        first_foreign_payment_id,
        first_foreign_event_type,
        first_foreign_amount,
        first_foreign_payment_currency,
        first_chargeback_payment_id,
        chargeback_events,
        duplicated_reference_count,
        first_duplicated_reference,
        max_captures_per_reference
    from {{ payments_of_orders }}
),

shipments as (
    select
        order_id,
        units_shipped,
        units_returned,
        shipment_count,
        first_shipped_at,
        over_shipped_skus,
        first_over_shipped_sku,
        first_over_shipped_sku_units_ordered,
        first_over_shipped_sku_units_shipped,
        first_over_shipped_sku_units_returned,
        under_shipped_skus,
        first_under_shipped_sku,
        first_under_shipped_sku_units_ordered,
        first_under_shipped_sku_units_shipped,
        net_shipped_skus,
        first_net_shipped_sku,
        first_net_shipped_sku_units_shipped,
        first_net_shipped_sku_units_returned,
        oversold_shipments,
        first_oversold_sku,
        lowest_oversold_on_hand
    from {{ shipments_of_orders }}
),

priced_lines as (
    select
        order_id,
        line_id,
        sku,
        unit_price,
        catalog_unit_price,
        is_price_mismatch,
        is_unknown_sku
    from {{ ref('int_order_lines_priced') }}
    {%- if keyed %}
    where order_id in (select order_id from orders_to_assess)
    {%- endif %}
),

pricing_per_order as (
    select
        order_id,
        sum(case when is_price_mismatch then 1 else 0 end) as price_mismatch_lines,
        min(case when is_price_mismatch then line_id end) as first_price_mismatch_line,
        sum(case when is_unknown_sku then 1 else 0 end) as unknown_sku_lines,
        min(case when is_unknown_sku then sku end) as first_unknown_sku
    from priced_lines
    group by order_id
),

pricing as (
    select
        pricing_per_order.order_id,
        pricing_per_order.price_mismatch_lines,
        pricing_per_order.first_price_mismatch_line,
        mismatched.unit_price as first_price_mismatch_unit_price,
        mismatched.catalog_unit_price as first_price_mismatch_catalog_price,
        pricing_per_order.unknown_sku_lines,
        pricing_per_order.first_unknown_sku
    from pricing_per_order
    left join priced_lines as mismatched
        on
            pricing_per_order.order_id = mismatched.order_id
            and pricing_per_order.first_price_mismatch_line = mismatched.line_id
),

amounts as (
    select
        orders.*,
        coalesce(payments.authorized_amount, 0) as authorized_amount,
        coalesce(payments.captured_amount, 0) as captured_amount,
        coalesce(payments.psp_refunded_amount, 0) as psp_refunded_amount,
        coalesce(payments.chargeback_amount, 0) as chargeback_amount,
        coalesce(payments.captured_amount, 0) - coalesce(payments.psp_refunded_amount, 0) as net_paid_amount,
        case
            when orders.order_status in ('pending', 'cancelled') then cast(0 as decimal(18, 6))
            else orders.total_amount - orders.refunded_amount
        end as expected_net_amount,
        payments.first_captured_at,
        coalesce(payments.foreign_currency_events, 0) as foreign_currency_events,
        payments.first_foreign_currency,
        payments.first_foreign_payment_id,
        payments.first_foreign_event_type,
        payments.first_foreign_amount,
        payments.first_foreign_payment_currency,
        payments.first_chargeback_payment_id,
        coalesce(payments.chargeback_events, 0) as chargeback_events,
        coalesce(payments.duplicated_reference_count, 0) as duplicated_reference_count,
        payments.first_duplicated_reference,
        payments.max_captures_per_reference,
        coalesce(shipments.units_shipped, 0) as units_shipped,
        coalesce(shipments.units_returned, 0) as units_returned,
        coalesce(shipments.shipment_count, 0) as shipment_count,
        shipments.first_shipped_at,
        coalesce(shipments.over_shipped_skus, 0) as over_shipped_skus,
        shipments.first_over_shipped_sku,
        shipments.first_over_shipped_sku_units_ordered,
        shipments.first_over_shipped_sku_units_shipped,
        shipments.first_over_shipped_sku_units_returned,
        coalesce(shipments.under_shipped_skus, 0) as under_shipped_skus,
        shipments.first_under_shipped_sku,
        shipments.first_under_shipped_sku_units_ordered,
        shipments.first_under_shipped_sku_units_shipped,
        coalesce(shipments.net_shipped_skus, 0) as net_shipped_skus,
        shipments.first_net_shipped_sku,
        shipments.first_net_shipped_sku_units_shipped,
        shipments.first_net_shipped_sku_units_returned,
        coalesce(shipments.oversold_shipments, 0) as oversold_shipments,
        shipments.first_oversold_sku,
        shipments.lowest_oversold_on_hand,
        coalesce(pricing.price_mismatch_lines, 0) as price_mismatch_lines,
        pricing.first_price_mismatch_line,
        pricing.first_price_mismatch_unit_price,
        pricing.first_price_mismatch_catalog_price,
        coalesce(pricing.unknown_sku_lines, 0) as unknown_sku_lines,
        pricing.first_unknown_sku
    from orders
    left join payments on orders.order_id = payments.order_id
    left join shipments on orders.order_id = shipments.order_id
    left join pricing on orders.order_id = pricing.order_id
),

balanced as (
    select
        *,
        expected_net_amount - net_paid_amount as payment_balance_amount
    from amounts
),

final as (
    select
        *,
        is_paid_or_later
        and {{ money_compare('captured_amount', '0', 'currency') }} = 0 as is_payment_missing,
        is_paid_or_later
        and {{ money_compare('captured_amount', '0', 'currency') }} > 0
        and {{ money_compare('payment_balance_amount', '0', 'currency') }} > 0 as is_underpaid,
        order_status <> 'cancelled'
        and {{ money_compare('payment_balance_amount', '0', 'currency') }} < 0 as is_overpaid,
        {{ money_compare('psp_refunded_amount', 'refunded_amount', 'currency') }} <> 0 as is_refund_mismatch,
        order_status = 'cancelled'
        and {{ money_compare('net_paid_amount', '0', 'currency') }} > 0 as is_cancelled_not_refunded,
        foreign_currency_events > 0 as is_currency_mismatch,
        duplicated_reference_count > 0 as is_duplicate_capture,
        chargeback_events > 0 as is_chargeback,
        {{ money_compare('total_amount', 'computed_total_amount', 'currency') }} <> 0 as is_order_total_mismatch,
        shipment_count > 0
        and (first_captured_at is null or first_shipped_at < first_captured_at) as is_shipped_before_payment,
        over_shipped_skus > 0 as is_over_shipped,
        order_status = 'fulfilled' and under_shipped_skus > 0 as is_under_shipped,
        order_status = 'cancelled' and net_shipped_skus > 0 as is_cancelled_but_shipped,
        oversold_shipments > 0 as is_oversold,
        price_mismatch_lines > 0 as is_price_mismatch,
        unknown_sku_lines > 0 as is_unknown_sku,
        {{ processed_through([
            (ref('int_orders_current'), ['orders']),
            (ref('int_order_lines_current'), ['orders']),
            (ref('int_payments_attributed'), ['payments', 'orders']),
            (ref('stg_wms__inventory_movements'), ['inventory_movements']),
            (ref('stg_catalog__products'), ['products']),
        ]) }} as loaded_through,
        '{{ assessment_fingerprint() if execute else '' }}' as rules_fingerprint
    from balanced
)

select * from final

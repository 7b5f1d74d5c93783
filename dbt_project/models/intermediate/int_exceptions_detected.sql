{#- Every exception the current data raises: one row per (entity, code), with a detail sentence, the
    row or event that raised it (trigger), the money it puts in doubt (amount_at_risk, in `currency`, at the
    currency's minor unit; 0 where none) and the fields routing rules match on (channel, warehouse_id).
    Each order rule is (code, flag, detail, trigger, amount at risk). A detail holds no as-of time: an
    accepted exception reopens when its detail changes, so a sentence that moved with the clock would
    reopen it on every run.
    `earlier_detail`: where this release words a rule's detail differently, the sentence as an earlier
    release wrote it (order_audit_exception_history compares an accepted exception's evidence with
    both, so that new wording alone reopens nothing; for the money codes it equals the detail unless an
    amount has digits below the minor unit); null for the rules never reworded. -#}
{%- set version_trigger = "'order ' || order_id || ' version ' || cast(updated_at as varchar(40)) || ' ' || order_status" -%}
{#- Each order rule is worded twice: with the money format of this release (`format_money`) and, for
    earlier_detail, with the one before it (`format_money_at_minor_unit`). -#}
{%- set order_rules_worded = {} -%}
{%- set orphan_payment_worded = {} -%}
{%- for wording, money in [('current', format_money), ('earlier', format_money_at_minor_unit)] -%}
    {%- set order_rules = [
        ('PAYMENT_MISSING', 'is_payment_missing',
            "'Order is ' || order_status || ' but nothing was captured (expected ' || " ~ money('expected_net_amount', 'currency') ~ " || ').'",
            version_trigger, 'abs(payment_balance_amount)'),
        ('UNDERPAID', 'is_underpaid',
            "'Captured ' || " ~ money('captured_amount', 'currency') ~ " || ' net of refunds ' || " ~ money('net_paid_amount', 'currency') ~ " || ' but expected ' || " ~ money('expected_net_amount', 'currency') ~ " || ': customer owes ' || " ~ money('payment_balance_amount', 'currency') ~ " || '.'",
            version_trigger, 'payment_balance_amount'),
        ('OVERPAID', 'is_overpaid',
            "'Net paid ' || " ~ money('net_paid_amount', 'currency') ~ " || ' exceeds expected ' || " ~ money('expected_net_amount', 'currency') ~ " || ' by ' || " ~ money('-payment_balance_amount', 'currency') ~ " || '.'",
            version_trigger, '-payment_balance_amount'),
        ('REFUND_MISMATCH', 'is_refund_mismatch',
            "'PSP refunded ' || " ~ money('psp_refunded_amount', 'currency') ~ " || ' but the storefront records ' || " ~ money('refunded_amount', 'currency') ~ " || ' refunded.'",
            version_trigger, 'abs(psp_refunded_amount - refunded_amount)'),
        ('CANCELLED_NOT_REFUNDED', 'is_cancelled_not_refunded',
            "'Cancelled order still holds ' || " ~ money('net_paid_amount', 'currency') ~ " || ' net paid.'",
            version_trigger, 'net_paid_amount'),
        ('CURRENCY_MISMATCH', 'is_currency_mismatch',
            "cast(foreign_currency_events as varchar(20)) || ' succeeded payment event(s) in another currency than the order''s ' || currency || ', left out of the sums; first ' || first_foreign_payment_id || ' (' || first_foreign_event_type || ', ' || " ~ money('first_foreign_amount', 'first_foreign_payment_currency') ~ " || ').'",
            "'payment ' || first_foreign_payment_id || ' in ' || first_foreign_payment_currency", '0'),
        ('DUPLICATE_CAPTURE', 'is_duplicate_capture',
            "cast(max_captures_per_reference as varchar(20)) || ' succeeded captures share psp_reference ' || first_duplicated_reference || ' (' || cast(duplicated_reference_count as varchar(20)) || ' duplicated reference(s)).'",
            "'psp_reference ' || first_duplicated_reference || ' capture'", 'captured_amount'),
        ('CHARGEBACK', 'is_chargeback',
            "cast(chargeback_events as varchar(20)) || ' succeeded chargeback(s) totalling ' || " ~ money('chargeback_amount', 'currency') ~ " || '.'",
            "'payment ' || first_chargeback_payment_id || ' chargeback'", 'chargeback_amount'),
        ('ORDER_TOTAL_MISMATCH', 'is_order_total_mismatch',
            "'total_amount ' || " ~ money('total_amount', 'currency') ~ " || ' but lines, discount, shipping and tax give ' || " ~ money('computed_total_amount', 'currency') ~ " || '.'",
            version_trigger, 'abs(total_amount - computed_total_amount)'),
        ('SHIPPED_BEFORE_PAYMENT', 'is_shipped_before_payment',
            "'First shipment at ' || cast(first_shipped_at as varchar(40)) || ' UTC, ' || coalesce('first capture at ' || cast(first_captured_at as varchar(40)) || ' UTC', 'no succeeded capture') || '.'",
            "'shipment at ' || cast(first_shipped_at as varchar(40))", 'total_amount'),
        ('OVER_SHIPPED', 'is_over_shipped',
            "cast(over_shipped_skus as varchar(20)) || ' sku(s) shipped net of returns above the ordered units, first ' || first_over_shipped_sku || ' (' || cast(first_over_shipped_sku_units_shipped as varchar(20)) || ' shipped, ' || cast(first_over_shipped_sku_units_returned as varchar(20)) || ' returned, ' || cast(first_over_shipped_sku_units_ordered as varchar(20)) || ' ordered).'",
            "'sku ' || first_over_shipped_sku || ' shipment'", '0'),
        ('UNDER_SHIPPED', 'is_under_shipped',
            "'Fulfilled but ' || cast(under_shipped_skus as varchar(20)) || ' sku(s) shipped below the ordered units, first ' || first_under_shipped_sku || ' (' || cast(first_under_shipped_sku_units_shipped as varchar(20)) || ' of ' || cast(first_under_shipped_sku_units_ordered as varchar(20)) || ' units shipped).'",
            "'sku ' || first_under_shipped_sku || ' shipment'", '0'),
        ('CANCELLED_BUT_SHIPPED', 'is_cancelled_but_shipped',
            "'Cancelled but ' || cast(net_shipped_skus as varchar(20)) || ' sku(s) shipped net of returns, first ' || first_net_shipped_sku || ' (' || cast(first_net_shipped_sku_units_shipped as varchar(20)) || ' shipped, ' || cast(first_net_shipped_sku_units_returned as varchar(20)) || ' returned).'",
            "'order ' || order_id || ' shipment'", '0'),
        ('OVERSOLD', 'is_oversold',
            "cast(oversold_shipments as varchar(20)) || ' shipment(s) left on-hand below 0, first sku ' || first_oversold_sku || ', lowest on-hand ' || cast(lowest_oversold_on_hand as varchar(20)) || '.'",
            "'sku ' || first_oversold_sku || ' shipment'", '0'),
        ('FULFILLMENT_DELAYED', 'is_fulfillment_delayed',
            "'Captured at ' || cast(first_captured_at as varchar(40)) || ' UTC and still ' || order_status || ', over the ' || cast(cast(fulfillment_sla_hours as decimal(18, 2)) as varchar(20)) || ' hour SLA.'",
            "'capture at ' || cast(first_captured_at as varchar(40))", 'net_paid_amount'),
        ('PRICE_MISMATCH', 'is_price_mismatch',
            "cast(price_mismatch_lines as varchar(20)) || ' line(s) priced differently from the catalog at order time, first line ' || first_price_mismatch_line || ' (' || " ~ money('first_price_mismatch_unit_price', 'currency') ~ " || ' against ' || " ~ money('first_price_mismatch_catalog_price', 'currency') ~ " || ' in the catalog).'",
            "'order line ' || first_price_mismatch_line || ' price'", '0'),
        ('UNKNOWN_SKU', 'is_unknown_sku',
            "cast(unknown_sku_lines as varchar(20)) || ' line(s) with a sku not in the catalog, first ' || first_unknown_sku || '.'",
            "'sku ' || first_unknown_sku || ' order line'", '0'),
    ] -%}
    {%- do order_rules_worded.update({wording: order_rules}) -%}
    {%- do orphan_payment_worded.update({wording: "coalesce(
            'Payment ' || event_type || ' of ' || " ~ money('amount', 'currency') ~ " || ' (' || payment_status || ') references order ' || order_id || ', which is not a clean order.',
            'Payment ' || event_type || ' of ' || " ~ money('amount', 'currency') ~ " || ' (' || payment_status || ') has no order_id.'
        )"}) -%}
{%- endfor -%}
{%- set order_rules = order_rules_worded['current'] -%}
{#- The detail sentences as an earlier release wrote them: the order's unit totals (fulfillment codes),
    no numbers (currency and price codes), each amount at the minor unit (the money codes, from
    order_rules_worded['earlier']). -#}
{%- set earlier_details = {
    'CURRENCY_MISMATCH': "cast(foreign_currency_events as varchar(20)) || ' succeeded payment event(s) in ' || first_foreign_currency || ' on an order in ' || currency || ', left out of the sums.'",
    'PRICE_MISMATCH': "cast(price_mismatch_lines as varchar(20)) || ' line(s) priced differently from the catalog at order time, first line ' || first_price_mismatch_line || '.'",
    'CANCELLED_BUT_SHIPPED': "'Cancelled but ' || cast(units_shipped - units_returned as varchar(20)) || ' unit(s) shipped net of returns.'",
    'OVER_SHIPPED': "cast(over_shipped_skus as varchar(20)) || ' sku(s) shipped net of returns above the ordered units, first ' || first_over_shipped_sku || ' (' || cast(units_shipped as varchar(20)) || ' shipped, ' || cast(units_returned as varchar(20)) || ' returned, ' || cast(units_ordered as varchar(20)) || ' ordered in all).'",
    'UNDER_SHIPPED': "'Fulfilled but ' || cast(under_shipped_skus as varchar(20)) || ' sku(s) shipped below the ordered units, first ' || first_under_shipped_sku || ' (' || cast(units_shipped as varchar(20)) || ' of ' || cast(units_ordered as varchar(20)) || ' units shipped in all).'",
} -%}
{%- for code, flag, detail, trigger, amount in order_rules_worded['earlier'] -%}
    {%- if detail != order_rules[loop.index0][2] and code not in earlier_details -%}
        {%- do earlier_details.update({code: detail}) -%}
    {%- endif -%}
{%- endfor -%}
with

orders as (
    select * from {{ ref('int_orders_evaluated') }}
),

payments as (
    select
        payment_id,
        order_id,
        event_type,
        amount,
        currency,
        payment_status
    from {{ ref('int_payments_attributed') }}
    where not has_order
),

movements as (
    select
        movement.movement_id,
        movement.order_id,
        movement.movement_type,
        movement.sku,
        movement.warehouse_id,
        movement.quantity
    from {{ ref('stg_wms__inventory_movements') }} as movement
    left join {{ ref('int_orders_current') }} as orders on movement.order_id = orders.order_id
    where movement.order_id is not null and orders.order_id is null
),

stock_positions as (
    select
        sku,
        warehouse_id,
        snapshot_date,
        reported_on_hand,
        computed_on_hand
    from {{ ref('int_stock_positions_reconciled') }}
    where is_mismatch
),

codes as (
    select
        exception_code,
        severity,
        owner_team,
        source_system
    from {{ ref('exception_codes') }}
),

detected as (
    {%- for code, flag, detail, trigger, amount in order_rules %}
        select
            'order' as entity_type,
            order_id as entity_id,
            order_id,
            '{{ code }}' as exception_code,
            {{ detail }} as detail,
            {{ earlier_details.get(code, 'cast(null as ' ~ string_type() ~ ')') }} as earlier_detail,
            {{ trigger }} as trigger_text,
            {{ round_to_minor_unit(amount, 'currency') }} as amount_at_risk,
            currency,
            channel,
            cast(null as {{ string_type() }}) as warehouse_id
        from orders
        where {{ flag }}
        union all
    {%- endfor %}
    select
        'payment' as entity_type,
        payment_id as entity_id,
        order_id,
        'ORPHAN_PAYMENT' as exception_code,
        {{ orphan_payment_worded['current'] }} as detail,
        {{ orphan_payment_worded['earlier'] }} as earlier_detail,
        'payment ' || payment_id || ' ' || event_type as trigger_text,
        case
            when payment_status = 'succeeded' then {{ round_to_minor_unit('amount', 'currency') }}
            else cast(0 as decimal(38, 6))
        end as amount_at_risk,
        currency,
        cast(null as {{ string_type() }}) as channel,
        cast(null as {{ string_type() }}) as warehouse_id
    from payments
    union all
    select
        'movement' as entity_type,
        movement_id as entity_id,
        order_id,
        'ORPHAN_MOVEMENT' as exception_code,
        'Movement ' || movement_type || ' of ' || cast(quantity as varchar(20)) || ' x ' || sku || ' references order ' || order_id || ', which is not a clean order.' as detail,
        cast(null as {{ string_type() }}) as earlier_detail,
        'movement ' || movement_id || ' ' || movement_type as trigger_text,
        cast(0 as decimal(38, 6)) as amount_at_risk,
        cast(null as {{ string_type() }}) as currency,
        cast(null as {{ string_type() }}) as channel,
        warehouse_id
    from movements
    union all
    select
        'stock_position' as entity_type,
        sku || '|' || warehouse_id || '|' || cast(snapshot_date as varchar(10)) as entity_id,
        cast(null as varchar(1)) as order_id,
        'STOCK_LEVEL_MISMATCH' as exception_code,
        'WMS reports on_hand ' || cast(reported_on_hand as varchar(20)) || ' for ' || sku || ' in ' || warehouse_id || ' at the end of ' || cast(snapshot_date as varchar(10)) || ' but movements give ' || cast(computed_on_hand as varchar(20)) || '.' as detail,
        cast(null as {{ string_type() }}) as earlier_detail,
        'inventory_level ' || sku || '|' || warehouse_id || '|' || cast(snapshot_date as varchar(10)) || ' snapshot' as trigger_text,
        cast(0 as decimal(38, 6)) as amount_at_risk,
        cast(null as {{ string_type() }}) as currency,
        cast(null as {{ string_type() }}) as channel,
        warehouse_id
    from stock_positions
),

final as (
    select
        {{ surrogate_key(['detected.entity_type', 'detected.entity_id', 'detected.exception_code']) }} as exception_id,
        detected.entity_type,
        detected.entity_id,
        detected.order_id,
        detected.exception_code,
        codes.severity,
        codes.owner_team,
        detected.detail,
        detected.earlier_detail,
        codes.source_system,
        detected.trigger_text,
        detected.amount_at_risk,
        detected.currency,
        detected.channel,
        detected.warehouse_id
    from detected
    inner join codes on detected.exception_code = codes.exception_code
)

select * from final

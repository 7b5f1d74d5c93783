{#- Per order: succeeded payment sums in the order currency, first capture in any currency, and the
    payment-side facts the rules need, with the first
    foreign-currency event (lowest payment_id) that CURRENCY_MISMATCH's detail quotes. One row per order that has any payment event. -#}
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

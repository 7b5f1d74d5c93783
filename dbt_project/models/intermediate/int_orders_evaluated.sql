{#- One row per current order with every audited amount and one boolean per order-level rule of
    audit_mart.md: int_orders_assessed, plus FULFILLMENT_DELAYED, the one rule that depends on the as-of
    time (every order's, every run: it changes without any new load). -#}
with

assessed as (
    select * from {{ ref('int_orders_assessed') }}
),

clock as (
    select
        as_of,
        fulfillment_sla_hours
    from {{ ref('int_audit_clock') }}
),

final as (
    select
        assessed.*,
        clock.as_of,
        clock.fulfillment_sla_hours,
        assessed.order_status in ('paid', 'partially_fulfilled')
        and assessed.first_captured_at is not null
        and {{ epoch_microseconds('clock.as_of') }} - {{ epoch_microseconds('assessed.first_captured_at') }}
        > cast(clock.fulfillment_sla_hours * 3600000000 as bigint) as is_fulfillment_delayed
    from assessed
    cross join clock
)

select * from final

{#- The audit's as-of time (var audit_as_of, else the latest clean event) and the fulfillment SLA. -#}
with

order_times as (
    select max(updated_at) as latest_at from {{ ref('stg_storefront__orders') }}
),

payment_times as (
    select max(processed_at) as latest_at from {{ ref('stg_psp__payments') }}
),

movement_times as (
    select max(occurred_at) as latest_at from {{ ref('stg_wms__inventory_movements') }}
),

latest as (
    select max(latest_at) as latest_at
    from (
        select latest_at from order_times
        union all
        select latest_at from payment_times
        union all
        select latest_at from movement_times
    ) as candidates
),

final as (
    select
        {%- if var('audit_as_of') %}
        cast('{{ var("audit_as_of") }}' as timestamp) as as_of,
        {%- else %}
            latest_at as as_of,
        {%- endif %}
        cast({{ var('fulfillment_sla_hours') }} as decimal(18, 6)) as fulfillment_sla_hours
    from latest
)

select * from final

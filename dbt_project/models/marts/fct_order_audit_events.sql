{#- The audit trail: one row per event on a clean order, from all three systems, in sequence.
    Incremental by order: a run rebuilds the trail of every order that a new load touches (a new
    version, or a payment or movement of it arriving days later, and the order a payment or movement
    was on before a new delivery of it names another), see macros/incremental.sql. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        pre_hook=["{{ keep_key_not_null('event_id') }}", "{{ delete_events_of_vanished_orders() }}"],
    )
}}
with

{% if keyed_incremental() -%}
touched_orders as (
    select {{ trimmed_id('order_id') }} as order_id
    from {{ source('raw', 'orders') }}
    where load_id in ({{ new_loads_since_watermark() }})
    {%- for staged, id_column, source_system in [
        ('stg_psp__payments', 'payment_id', 'psp'), ('stg_wms__inventory_movements', 'movement_id', 'wms')
    ] %}
    union
    {#- payments and movements staged anew since the trail's last build: the order each is on now, and
        the one the trail has it on (a later delivery, or a correction taking it away, can move it) #}
    select order_id
    from {{ ref(staged) }}
    where loaded_through > {{ watermark() }}
    union
    select order_id
    from {{ this }}
    where
        source_system = '{{ source_system }}'
        and source_id in (
            select {{ id_column }} from {{ ref(staged) }}
            where loaded_through > {{ watermark() }}
        )
    {%- endfor %}
    union
    select order_id
    from {{ this }}
    where source_file in ({{ replaced_files_since_watermark() }})
),

{% endif -%}
versions as (
    select
        order_id,
        order_status,
        previous_status,
        currency,
        created_at,
        updated_at,
        total_amount,
        version_number,
        load_id,
        source_file
    from {{ ref('int_order_versions_sequenced') }}
),

orders as (
    select order_id from {{ ref('int_orders_current') }}
    {%- if keyed_incremental() %}
    where order_id in (select order_id from touched_orders)
    {%- endif %}
),

payments as (
    select
        payments.payment_id,
        payments.order_id,
        payments.event_type,
        payments.amount,
        payments.currency,
        payments.payment_status,
        payments.processed_at,
        payments.load_id,
        payments.source_file
    from {{ ref('int_payments_attributed') }} as payments
    inner join orders on payments.order_id = orders.order_id
),

movements as (
    select
        movements.movement_id,
        movements.order_id,
        movements.movement_type,
        movements.sku,
        movements.quantity,
        movements.occurred_at,
        movements.load_id,
        movements.source_file
    from {{ ref('stg_wms__inventory_movements') }} as movements
    inner join orders on movements.order_id = orders.order_id
),

storefront_events as (
    select
        versions.order_id,
        case
            when versions.version_number = 1 then versions.created_at
            else versions.updated_at
        end as event_at,
        1 as source_rank,
        'storefront' as source_system,
        versions.order_id || '@' || cast(versions.updated_at as varchar(40)) as source_id,
        case
            when versions.version_number = 1 then 'order_created'
            when versions.order_status <> versions.previous_status then 'order_status_changed'
            else 'order_updated'
        end as event_type,
        cast(null as {{ string_type() }}) as status,
        versions.total_amount as amount,
        versions.currency,
        cast(null as {{ string_type() }}) as sku,
        cast(null as bigint) as quantity,
        versions.previous_status as from_status,
        versions.order_status as to_status,
        versions.source_file,
        versions.load_id
    from versions
    inner join orders on versions.order_id = orders.order_id
),

psp_events as (
    select
        order_id,
        processed_at as event_at,
        2 as source_rank,
        'psp' as source_system,
        payment_id as source_id,
        'payment_' || event_type as event_type,
        payment_status as status,
        amount,
        currency,
        cast(null as {{ string_type() }}) as sku,
        cast(null as bigint) as quantity,
        cast(null as {{ string_type() }}) as from_status,
        cast(null as {{ string_type() }}) as to_status,
        source_file,
        load_id
    from payments
),

wms_events as (
    select
        order_id,
        occurred_at as event_at,
        3 as source_rank,
        'wms' as source_system,
        movement_id as source_id,
        'inventory_' || movement_type as event_type,
        cast(null as {{ string_type() }}) as status,
        cast(null as decimal(18, 6)) as amount,
        cast(null as {{ string_type() }}) as currency,
        sku,
        quantity,
        cast(null as {{ string_type() }}) as from_status,
        cast(null as {{ string_type() }}) as to_status,
        source_file,
        load_id
    from movements
),

events as (
    select * from storefront_events
    union all
    select * from psp_events
    union all
    select * from wms_events
),

final as (
    select
        cast({{ surrogate_key(['source_system', 'source_id', 'event_type']) }} as {{ string_type() }}) as event_id,
        cast(order_id as {{ string_type() }}) as order_id,
        cast(event_at as timestamp) as event_at,
        cast(
            row_number() over (partition by order_id order by event_at, source_rank, source_id) as integer
        ) as event_sequence,
        cast(source_system as {{ string_type() }}) as source_system,
        cast(source_id as {{ string_type() }}) as source_id,
        cast(event_type as {{ string_type() }}) as event_type,
        cast(status as {{ string_type() }}) as status,
        cast(amount as decimal(18, 6)) as amount,
        cast(currency as {{ string_type() }}) as currency,
        cast(sku as {{ string_type() }}) as sku,
        cast(quantity as bigint) as quantity,
        cast(from_status as {{ string_type() }}) as from_status,
        cast(to_status as {{ string_type() }}) as to_status,
        cast(source_file as {{ string_type() }}) as source_file,
        cast(load_id as {{ string_type() }}) as load_id,
        cast({{ processed_through([
            (ref('int_order_versions_sequenced'), ['orders']),
            (ref('int_orders_current'), ['orders']),
            (ref('int_payments_attributed'), ['payments', 'orders']),
            (ref('stg_psp__payments'), ['payments']),
            (ref('stg_wms__inventory_movements'), ['inventory_movements']),
        ]) }} as timestamp) as loaded_through
    from events
)

select * from final

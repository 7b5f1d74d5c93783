{#- The lines of every order version kept by stg_storefront__orders (same file and line number).
    Incremental by order: the lines of every order whose versions were rewritten since the last run. -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=audit_incremental_strategy(),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_rows_of_rewritten_orders(ref('stg_storefront__orders')) }}",
    )
}}
with

versions as (
    select
        order_id,
        updated_at,
        source_file,
        line_number,
        loaded_through
    from {{ ref('stg_storefront__orders') }}
    {%- if keyed_incremental() %}
    where order_id in ({{ orders_rewritten_in(ref('stg_storefront__orders')) }})
    {%- endif %}
),

source as (
    select
        source_file,
        line_number,
        line_index,
        line_id,
        sku,
        quantity,
        unit_price,
        discount_amount
    from {{ source('raw', 'order_lines') }}
),

final as (
    select
        versions.order_id,
        versions.updated_at,
        source.line_index,
        {{ trimmed_id('source.line_id') }} as line_id,
        {{ trimmed_id('source.sku') }} as sku,
        cast(trim(source.quantity) as bigint) as quantity,
        {{ money('source.unit_price') }} as unit_price,
        {{ money('source.discount_amount', optional=true) }} as line_discount_amount,
        versions.loaded_through
    from source
    inner join versions
        on
            source.source_file = versions.source_file
            and source.line_number = versions.line_number
)

select * from final

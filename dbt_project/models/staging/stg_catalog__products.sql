{#- One price row per (sku, currency, valid_from): the later delivery wins. -#}
with

source as (
    select
        load_id,
        source_file,
        extract_date,
        line_number,
        sku,
        title,
        unit_price,
        currency,
        valid_from
    from {{ source('raw', 'products') }}
),

typed as (
    select
        {{ trimmed_id('sku') }} as sku,
        nullif(trim(title), '') as title,
        {{ money('unit_price') }} as unit_price,
        currency,
        {{ utc_timestamp('valid_from') }} as valid_from,
        load_id,
        source_file,
        extract_date,
        line_number
    from source
),

ranked as (
    select
        *,
        {{ latest_delivery_rank('sku, currency, valid_from') }} as delivery_rank
    from typed
),

final as (
    select
        sku,
        title,
        unit_price,
        currency,
        valid_from,
        load_id,
        source_file,
        extract_date,
        line_number,
        {{ loaded_through() }} as loaded_through
    from ranked
    where delivery_rank = 1
)

select * from final

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
        row_number() over (
            partition by sku, currency, valid_from
            order by extract_date desc, source_file desc, line_number desc
        ) as delivery_rank
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
        line_number
    from ranked
    where delivery_rank = 1
)

select * from final

{#- Each current order line with the catalog price of its sku in the order currency effective at the
    order's created_at (valid_from inclusive, until the next valid_from of that sku and currency). -#}
with

lines as (
    select
        order_id,
        line_id,
        sku,
        unit_price,
        currency,
        created_at
    from {{ ref('int_order_lines_current') }}
),

prices as (
    select
        sku,
        currency,
        unit_price,
        valid_from,
        lead(valid_from) over (partition by sku, currency order by valid_from) as valid_to
    from {{ ref('stg_catalog__products') }}
),

catalog_skus as (
    select distinct sku from {{ ref('stg_catalog__products') }}
),

catalog_loaded as (
    select count(*) > 0 as is_loaded from {{ ref('stg_catalog__products') }}
),

final as (
    select
        lines.order_id,
        lines.line_id,
        lines.sku,
        lines.currency,
        lines.unit_price,
        prices.unit_price as catalog_unit_price,
        catalog_loaded.is_loaded as catalog_loaded,
        catalog_skus.sku is not null as sku_in_catalog,
        catalog_loaded.is_loaded
        and prices.unit_price is not null
        and {{ money_compare('lines.unit_price', 'prices.unit_price', 'lines.currency') }} <> 0 as is_price_mismatch,
        catalog_loaded.is_loaded and catalog_skus.sku is null as is_unknown_sku
    from lines
    cross join catalog_loaded
    left join catalog_skus on lines.sku = catalog_skus.sku
    left join prices
        on
            lines.sku = prices.sku
            and lines.currency = prices.currency
            and lines.created_at >= prices.valid_from
            and (prices.valid_to is null or lines.created_at < prices.valid_to)
)

select * from final

{#- One row per sku in the catalog or on a current order line, with its latest catalog title. -#}
with

catalog as (
    select
        sku,
        title,
        currency,
        valid_from
    from {{ ref('stg_catalog__products') }}
),

latest_titles as (
    select
        sku,
        title,
        row_number() over (partition by sku order by valid_from desc, currency asc) as recency
    from catalog
),

catalog_summary as (
    select
        sku,
        count(distinct currency) as catalog_currencies,
        count(*) as catalog_price_rows
    from catalog
    group by sku
),

ordered as (
    select
        sku,
        count(distinct order_id) as orders,
        sum(quantity) as units_ordered
    from {{ ref('int_order_lines_current') }}
    group by sku
),

skus as (
    select sku from catalog_summary
    union
    select sku from ordered
),

final as (
    select
        cast(skus.sku as {{ string_type() }}) as sku,
        cast(latest_titles.title as {{ string_type() }}) as title,
        cast(catalog_summary.sku is not null as boolean) as in_catalog,
        cast(coalesce(catalog_summary.catalog_currencies, 0) as integer) as catalog_currencies,
        cast(coalesce(catalog_summary.catalog_price_rows, 0) as integer) as catalog_price_rows,
        cast(coalesce(ordered.orders, 0) as bigint) as orders,
        cast(coalesce(ordered.units_ordered, 0) as bigint) as units_ordered
    from skus
    left join catalog_summary on skus.sku = catalog_summary.sku
    left join latest_titles on skus.sku = latest_titles.sku and latest_titles.recency = 1
    left join ordered on skus.sku = ordered.sku
)

select * from final

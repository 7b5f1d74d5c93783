{#- "The later delivery wins" (extracts.md): files in extract-date order, then file name in byte order,
    rows in line order. 1 is the latest delivery of each key. -#}
{% macro latest_delivery_rank(keys) -%}
    row_number() over (
        partition by {{ keys }}
        order by extract_date desc, source_file desc, line_number desc
    )
{%- endmacro %}

{#- "The later delivery wins" (extracts.md): deliveries ordered by var('delivery_order') (extract date,
    file name in byte order, line number; dbt_project.yml). 1 is the latest delivery of each key. -#}
{% macro latest_delivery_rank(keys) -%}
    row_number() over (
        partition by {{ keys }}
        order by {% for column in var('delivery_order') %}{{ column }} desc{% if not loop.last %}, {% endif %}{% endfor %}
    )
{%- endmacro %}

{#- A stable text key of several columns: md5 of the values joined by '|' (md5 is in every engine). -#}
{% macro surrogate_key(columns) -%}
    md5({% for column in columns %}coalesce(cast({{ column }} as varchar(400)), ''){% if not loop.last %} || '|' || {% endif %}{% endfor %})
{%- endmacro %}

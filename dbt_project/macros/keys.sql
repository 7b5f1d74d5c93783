{#-
  Why these are hand-made and not dbt_utils: `dbt deps` fetches packages from dbt's package hub or
  GitHub, and this project's machines and CI reach only PyPI (tried with dbt-core 1.11: name
  resolution of both hosts fails), and no PyPI package ships dbt-labs/dbt_utils. So dbt_utils is not
  installed and nothing of it is copied here.
  - tests/generic/unique_combination_of_columns.sql has dbt_utils.unique_combination_of_columns's name
    and behaviour (one row per duplicated combination); its argument is `columns` where dbt_utils's
    is `combination_of_columns`. To swap: add dbt_utils to packages.yml, and in the YAML files write
    `dbt_utils.unique_combination_of_columns` with `combination_of_columns:`.
  - surrogate_key below is not dbt_utils.generate_surrogate_key: that one joins with '-' and writes
    '_dbt_utils_surrogate_key_null_' for nulls, so swapping would change every key it builds.
-#}
{#- A stable text key of several columns: md5 of the values joined by '|' (md5 is in every engine). -#}
{% macro surrogate_key(columns) -%}
    md5({% for column in columns %}coalesce(cast({{ column }} as varchar(400)), ''){% if not loop.last %} || '|' || {% endif %}{% endfor %})
{%- endmacro %}

{#- Typing of the raw text columns. Every engine-specific piece is an adapter.dispatch macro. -#}

{#- The unbounded text type of casts and contracts: varchar in DuckDB, string in Spark (Spark rejects a
    bare varchar). -#}
{% macro string_type() -%}
    {{ return(adapter.dispatch('string_type', 'order_audit')()) }}
{%- endmacro %}

{% macro duckdb__string_type() -%}
    varchar
{%- endmacro %}

{% macro default__string_type() -%}
    string
{%- endmacro %}

{% macro money(column, optional=false) -%}
    {%- if optional -%}
    coalesce(cast(nullif(trim({{ column }}), '') as decimal(18, 6)), cast(0 as decimal(18, 6)))
    {%- else -%}
    cast(trim({{ column }}) as decimal(18, 6))
    {%- endif -%}
{%- endmacro %}

{% macro trimmed_id(column) -%}
    nullif({{ trim_whitespace(column) }}, '')
{%- endmacro %}

{#- `column` without the whitespace around it (var('whitespace_code_points'): tabs and line breaks too). -#}
{% macro trim_whitespace(column) -%}
    {{ return(adapter.dispatch('trim_whitespace', 'order_audit')(column)) }}
{%- endmacro %}

{#- DuckDB: trim() with a set of characters is three times slower than without, so only a value that
    starts or ends outside the printable ASCII letters around which no whitespace lies takes it (orchestration/
    rules.py `trimmed_sql` is the loader's twin). A CASE, so that other rows never compute it. -#}
{% macro duckdb__trim_whitespace(column) -%}
    {%- set code_points = var('whitespace_code_points') -%}
    {%- set low = (code_points | select('lt', 65) | max) + 1 -%}
    {%- set high = (code_points | select('gt', 122) | min) - 1 -%}
    case
        when ascii({{ column }}) between {{ low }} and {{ high }} and ascii(right({{ column }}, 1)) between {{ low }} and {{ high }}
            then {{ column }}
        else trim({{ column }}, {% for code_point in code_points %}chr({{ code_point }}){% if not loop.last %} || {% endif %}{% endfor %})
    end
{%- endmacro %}

{#- Spark: a Java regular expression (chr() stops at 255 there). -#}
{% macro default__trim_whitespace(column) -%}
    {%- set whitespace -%}[{% for code_point in var('whitespace_code_points') %}\\x{ {{- '%x' % code_point -}} }{% endfor %}]{%- endset -%}
    regexp_replace({{ column }}, '^{{ whitespace }}+|{{ whitespace }}+$', '')
{%- endmacro %}

{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'order_audit')(column)) }}
{%- endmacro %}

{#- DuckDB: a cast takes Z, +hh:mm, +hhmm and +hh but not a lower-case z, which the contract allows. -#}
{% macro duckdb__utc_timestamp(column) -%}
    timezone('UTC', cast(upper(trim({{ column }})) as timestamptz))
{%- endmacro %}

{#- Spark (session time zone UTC): a cast honours Z and +hh:mm / +hh offsets and microseconds but not a
    lower-case z or a +hhmm offset, which the extract contract allows: normalize those first. -#}
{% macro default__utc_timestamp(column) -%}
    cast(regexp_replace(upper(trim({{ column }})), '([+-][0-9]{2})([0-9]{2})$', '$1:$2') as timestamp)
{%- endmacro %}

{#- the current time in UTC as a plain TIMESTAMP -#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'order_audit')()) }}
{%- endmacro %}

{% macro duckdb__utc_now() -%}
    timezone('UTC', now())
{%- endmacro %}

{#- Spark: the session time zone is UTC -#}
{% macro default__utc_now() -%}
    cast(current_timestamp() as timestamp)
{%- endmacro %}

{% macro epoch_microseconds(ts) -%}
    {{ return(adapter.dispatch('epoch_microseconds', 'order_audit')(ts)) }}
{%- endmacro %}

{% macro duckdb__epoch_microseconds(ts) -%}
    epoch_us({{ ts }})
{%- endmacro %}

{% macro default__epoch_microseconds(ts) -%}
    unix_micros({{ ts }})
{%- endmacro %}

{% macro next_day_midnight(day) -%}
    {{ return(adapter.dispatch('next_day_midnight', 'order_audit')(day)) }}
{%- endmacro %}

{% macro duckdb__next_day_midnight(day) -%}
    cast({{ day }} + interval 1 day as timestamp)
{%- endmacro %}

{% macro default__next_day_midnight(day) -%}
    cast(date_add({{ day }}, 1) as timestamp)
{%- endmacro %}

{% macro sorted_csv_agg(column) -%}
    {{ return(adapter.dispatch('sorted_csv_agg', 'order_audit')(column)) }}
{%- endmacro %}

{% macro duckdb__sorted_csv_agg(column) -%}
    string_agg(distinct {{ column }}, ',' order by {{ column }})
{%- endmacro %}

{% macro default__sorted_csv_agg(column) -%}
    array_join(array_sort(collect_set({{ column }})), ',')
{%- endmacro %}

{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex', 'order_audit')(expression)) }}
{%- endmacro %}

{% macro duckdb__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}

{#- ts plus a whole number of hours, exact to the microsecond (dbt's cross-engine dateadd truncates to the
    second on Spark). -#}
{% macro add_hours(ts, hours) -%}
    {{ return(adapter.dispatch('add_hours', 'order_audit')(ts, hours)) }}
{%- endmacro %}

{% macro duckdb__add_hours(ts, hours) -%}
    ({{ ts }} + to_hours(cast({{ hours }} as bigint)))
{%- endmacro %}

{% macro default__add_hours(ts, hours) -%}
    timestamp_micros(unix_micros({{ ts }}) + cast({{ hours }} as bigint) * 3600000000)
{%- endmacro %}

{#- Currency minor units (extracts.md; the list is var('currency_minor_units') in dbt_project.yml) and
    exact amount comparison: round the difference half away from zero to the currency's minor unit,
    then compare with 0. Every branch is cast to one decimal type: a CASE over round(x, 0) and
    round(x, 2) would otherwise take the scale of the first branch. -#}

{#- {0: ['JPY', ...], 3: ['BHD', ...]}: the currencies whose minor unit is not 2, by exponent -#}
{% macro currencies_by_minor_units() -%}
    {%- set grouped = {} -%}
    {%- for code, units in var('currency_minor_units').items() -%}
        {%- do grouped.setdefault(units | int, []).append(code) -%}
    {%- endfor -%}
    {{ return(grouped) }}
{%- endmacro %}

{#- case when <currency> in (...) then <expression with UNITS replaced by the exponent> ... end -#}
{% macro case_by_minor_units(currency, expression) -%}
    case
    {%- for units, codes in currencies_by_minor_units().items() %}
        when {{ currency }} in ('{{ codes | join("', '") }}') then {{ expression | replace('UNITS', units | string) }}
    {%- endfor %}
        else {{ expression | replace('UNITS', '2') }}
    end
{%- endmacro %}

{% macro round_to_minor_unit(amount, currency) -%}
    {{ case_by_minor_units(currency, 'cast(round(' ~ amount ~ ', UNITS) as decimal(38, 6))') }}
{%- endmacro %}

{#- sign of (left - right) at the currency's minor unit: -1, 0 or 1 -#}
{% macro money_compare(left, right, currency) -%}
    sign({{ round_to_minor_unit('(' ~ left ~ ') - (' ~ right ~ ')', currency) }})
{%- endmacro %}

{#- '12.50 USD', '1250 JPY', '1.250 KWD': the amount at the currency's minor unit, for detail sentences;
    an amount with digits below the minor unit is written exactly ('4.995 USD'), so that a sentence never
    quotes two equal amounts for a difference that rounds to a whole minor unit -#}
{% macro format_money(amount, currency) -%}
    {{ case_by_minor_units(
        currency,
        'case when round(' ~ amount ~ ', UNITS) = (' ~ amount ~ ') then ' ~ minor_unit_text(amount)
        ~ " else trim(trailing '0' from cast(cast(" ~ amount ~ ' as decimal(38, 6)) as varchar(60))) end'
    ) }} || ' ' || {{ currency }}
{%- endmacro %}

{#- the amount at the currency's minor unit always: the earlier releases' detail sentences -#}
{% macro format_money_at_minor_unit(amount, currency) -%}
    {{ case_by_minor_units(currency, minor_unit_text(amount)) }} || ' ' || {{ currency }}
{%- endmacro %}

{#- the text of `amount` rounded to UNITS decimals (case_by_minor_units fills in UNITS) -#}
{% macro minor_unit_text(amount) -%}
    cast(cast(round({{ amount }}, UNITS) as decimal(38, UNITS)) as varchar(60))
{%- endmacro %}

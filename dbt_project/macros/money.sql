{#- Currency minor units (extracts.md) and exact amount comparison: round the difference half away
    from zero to the currency's minor unit, then compare with 0. -#}

{% macro minor_units(currency) -%}
    case
        when {{ currency }} in ('JPY', 'KRW', 'VND', 'CLP', 'ISK') then 0
        when {{ currency }} in ('BHD', 'KWD', 'OMR', 'JOD', 'TND') then 3
        else 2
    end
{%- endmacro %}

{% macro round_to_minor_unit(amount, currency) -%}
    case
        when {{ currency }} in ('JPY', 'KRW', 'VND', 'CLP', 'ISK') then round({{ amount }}, 0)
        when {{ currency }} in ('BHD', 'KWD', 'OMR', 'JOD', 'TND') then round({{ amount }}, 3)
        else round({{ amount }}, 2)
    end
{%- endmacro %}

{#- sign of (left - right) at the currency's minor unit: -1, 0 or 1 -#}
{% macro money_compare(left, right, currency) -%}
    sign({{ round_to_minor_unit('(' ~ left ~ ') - (' ~ right ~ ')', currency) }})
{%- endmacro %}

{% macro format_money(amount, currency) -%}
    cast({{ round_to_minor_unit(amount, currency) }} as varchar(40)) || ' ' || {{ currency }}
{%- endmacro %}

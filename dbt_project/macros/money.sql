{#- Currency minor units (extracts.md) and exact amount comparison: round the difference half away
    from zero to the currency's minor unit, then compare with 0. Every branch is cast to one decimal
    type: a CASE over round(x, 0) and round(x, 2) would otherwise take the scale of the first branch. -#}


{% macro minor_units(currency) -%}
    case
        when {{ currency }} in ('JPY', 'KRW', 'VND', 'CLP', 'ISK') then 0
        when {{ currency }} in ('BHD', 'KWD', 'OMR', 'JOD', 'TND') then 3
        else 2
    end
{%- endmacro %}

{% macro round_to_minor_unit(amount, currency) -%}
    case
        when {{ currency }} in ('JPY', 'KRW', 'VND', 'CLP', 'ISK') then cast(round({{ amount }}, 0) as decimal(38, 6))
        when {{ currency }} in ('BHD', 'KWD', 'OMR', 'JOD', 'TND') then cast(round({{ amount }}, 3) as decimal(38, 6))
        else cast(round({{ amount }}, 2) as decimal(38, 6))
    end
{%- endmacro %}

{#- sign of (left - right) at the currency's minor unit: -1, 0 or 1 -#}
{% macro money_compare(left, right, currency) -%}
    sign({{ round_to_minor_unit('(' ~ left ~ ') - (' ~ right ~ ')', currency) }})
{%- endmacro %}

{#- '12.50 USD', '1250 JPY', '1.250 KWD': the amount at the currency's minor unit, for detail sentences -#}
{% macro format_money(amount, currency) -%}
    case
        when {{ currency }} in ('JPY', 'KRW', 'VND', 'CLP', 'ISK') then cast(cast(round({{ amount }}, 0) as decimal(38, 0)) as varchar(60))
        when {{ currency }} in ('BHD', 'KWD', 'OMR', 'JOD', 'TND') then cast(cast(round({{ amount }}, 3) as decimal(38, 3)) as varchar(60))
        else cast(cast(round({{ amount }}, 2) as decimal(38, 2)) as varchar(60))
    end || ' ' || {{ currency }}
{%- endmacro %}

{#- The exception register as the previous run left it: what people saw when they made the decisions
    this run applies. order_audit_exception_history reads it before this run rebuilds it, by name (a ref
    to its own downstream model would be a cycle); before the first build there is none, nor in a unit
    test that gives `this` (which may override this macro's output). -#}
{% macro register_as_shown() -%}
    {%- set register = adapter.get_relation(
        database=this.database, schema=this.schema, identifier='order_audit_exceptions'
    ) if execute and this is not string else none -%}
    {%- if register is not none -%}
    select exception_id, detail from {{ register }}
    {%- else -%}
    select
        cast(null as {{ string_type() }}) as exception_id,
        cast(null as {{ string_type() }}) as detail
    where 1 = 0
    {%- endif -%}
{%- endmacro %}

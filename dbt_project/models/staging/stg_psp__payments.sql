{#- One row per payment_id in its current state: the later delivery wins. Incremental: see
    macros/incremental.sql. -#}
{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy=audit_incremental_strategy(),
        post_hook="{{ delete_rows_without_raw_row(source('raw', 'payments')) }}",
    )
}}
with

{% if keyed_incremental() -%}
touched as (
    {{ touched_keys(source('raw', 'payments'), 'payment_id', trimmed_id('payment_id')) }}
),

{% endif -%}
source as (
    select
        load_id,
        source_file,
        extract_date,
        line_number,
        payment_id,
        order_id,
        event_type,
        amount,
        currency,
        status,
        processed_at,
        psp_reference,
        method
    from {{ source('raw', 'payments') }}
    {%- if keyed_incremental() %}
    where {{ trimmed_id('payment_id') }} in (select payment_id from touched)
    {%- endif %}
),

typed as (
    select
        {{ trimmed_id('payment_id') }} as payment_id,
        {{ trimmed_id('order_id') }} as order_id,
        event_type,
        {{ money('amount') }} as amount,
        currency,
        status as payment_status,
        {{ utc_timestamp('processed_at') }} as processed_at,
        {{ trimmed_id('psp_reference') }} as psp_reference,
        nullif(trim(method), '') as payment_method,
        load_id,
        source_file,
        extract_date,
        line_number
    from source
),

ranked as (
    select
        *,
        {{ latest_delivery_rank('payment_id') }} as delivery_rank
    from typed
),

final as (
    select
        payment_id,
        order_id,
        event_type,
        amount,
        currency,
        payment_status,
        processed_at,
        psp_reference,
        payment_method,
        load_id,
        source_file,
        extract_date,
        line_number,
        {{ loaded_through() }} as loaded_through
    from ranked
    where delivery_rank = 1
)

select * from final

{#- One row per payment_id in its current state: the later delivery wins. -#}
with

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
        row_number() over (
            partition by payment_id
            order by extract_date desc, source_file desc, line_number desc
        ) as delivery_rank
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
        line_number
    from ranked
    where delivery_rank = 1
)

select * from final

{#- Every landing row that broke the extract contract, with its file, line, raw text and reason. -#}
with

quarantine as (
    select
        source,
        source_file,
        extract_date,
        line_number,
        raw_text,
        reason_code,
        reason,
        load_id,
        quarantined_at
    from {{ source('raw', 'quarantine') }}
),

final as (
    select
        cast(source as {{ string_type() }}) as source,
        cast(source_file as {{ string_type() }}) as source_file,
        cast(extract_date as date) as extract_date,
        cast(line_number as bigint) as line_number,
        cast(raw_text as {{ string_type() }}) as raw_text,
        cast(reason_code as {{ string_type() }}) as reason_code,
        cast(reason as {{ string_type() }}) as reason,
        cast(load_id as {{ string_type() }}) as load_id,
        cast(quarantined_at as timestamp) as quarantined_at
    from quarantine
)

select * from final

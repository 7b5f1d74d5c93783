-- Bad input kept out of the mart, by source and reason, with an example line.
select
    source,
    reason_code,
    count(*) as quarantined_rows,
    count(distinct source_file) as files,
    min(source_file || ':' || cast(line_number as varchar)) as example_location
from {{ ref('quarantined_rows') }}
group by source, reason_code
order by quarantined_rows desc, source, reason_code

{#- A generic test: no value of the timestamp column (UTC) lies after the current time. -#}
{% test not_after_utc_now(model, column_name) %}
select {{ column_name }}, {{ utc_now() }} as checked_at
from {{ model }}
where {{ column_name }} > {{ utc_now() }}
{% endtest %}

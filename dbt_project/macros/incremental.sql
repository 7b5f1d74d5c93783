{#- Incremental staging over the raw landing tables.

    A run processes the raw rows of the loads made since the model last ran (the load manifest's
    loaded_at is the watermark, stored on every row as loaded_through) and, for each key those rows
    touch, re-resolves the key from ALL its raw rows, so "the later delivery wins" holds whatever
    order files arrive in. A corrected file (status 'replaced') can take rows away: keys whose winning
    raw row vanished are re-resolved too, and the post-hook deletes those with no raw row left. A raw
    row is identified by (load_id, source_file, line_number): a corrected file reuses line numbers. -#}

{#- Engines differ in how an incremental model replaces rows. DuckDB: delete+insert by unique_key, and
    the incremental branches below read only the keys new loads touched. Spark without Delta/Iceberg has no
    row-level delete: insert_overwrite (no partitions: the whole table) from a query over ALL rows, so
    there keyed_incremental() is false, the models take their full-build branch and no post-hook deletes. -#}
{% macro audit_incremental_strategy() -%}
    {{ return(adapter.dispatch('audit_incremental_strategy', 'order_audit')()) }}
{%- endmacro %}

{% macro default__audit_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__audit_incremental_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}

{% macro keyed_incremental() -%}
    {%- if not (is_incremental() and audit_incremental_strategy() == 'delete+insert') -%}
        {{ return(false) }}
    {%- endif -%}
    {#- A table written before its model stamped loaded_through (an earlier release) has no watermark:
        that run takes the full-build branch, on_schema_change adds the column, and the pre-hooks delete
        the orders upstream no longer has. -#}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {{ return('loaded_through' in columns) }}
{%- endmacro %}

{#- The model's watermark: the loaded_through of the newest rows it wrote. -#}
{% macro watermark() -%}
    (select coalesce(max(loaded_through), cast('1900-01-01' as timestamp)) from {{ this }})
{%- endmacro %}

{% macro new_loads_since_watermark() -%}
    select distinct load_id
    from {{ source('raw', 'load_manifest') }}
    where status in ('loaded', 'replaced')
      and loaded_at > {{ watermark() }}
{%- endmacro %}

{% macro replaced_files_since_watermark() -%}
    select distinct file_name
    from {{ source('raw', 'load_manifest') }}
    where status = 'replaced'
      and loaded_at > {{ watermark() }}
{%- endmacro %}

{#- The keys to (re)build: touched by new loads, or whose winning raw row was replaced away. -#}
{% macro touched_keys(raw_relation, key_column, key_expression) -%}
    select {{ key_expression }} as {{ key_column }}
    from {{ raw_relation }}
    where load_id in ({{ new_loads_since_watermark() }})
    union
    select current_rows.{{ key_column }}
    from {{ this }} as current_rows
    where current_rows.source_file in ({{ replaced_files_since_watermark() }})
      and not exists (
          select 1 from {{ raw_relation }} as raw_rows
          where raw_rows.load_id = current_rows.load_id
            and raw_rows.source_file = current_rows.source_file
            and raw_rows.line_number = current_rows.line_number
      )
{%- endmacro %}

{% macro delete_rows_without_raw_row(raw_relation) -%}
    {%- if keyed_incremental() -%}
    delete from {{ this }} as current_rows
    where current_rows.source_file in (
            select file_name from {{ source('raw', 'load_manifest') }} where status = 'replaced'
        )
      and not exists (
          select 1 from {{ raw_relation }} as raw_rows
          where raw_rows.load_id = current_rows.load_id
            and raw_rows.source_file = current_rows.source_file
            and raw_rows.line_number = current_rows.line_number
      )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The stamp of a model that reads raw: the newest load, all of which its build takes in. -#}
{% macro loaded_through() -%}
    (select max(loaded_at) from {{ source('raw', 'load_manifest') }})
{%- endmacro %}

{#- The stamp of a model that reads other models: the least of what each had taken in when the model
    read it. A model built before its upstream took the newest loads in (a subset in the Dagster UI,
    `dbt build -s`) read that upstream as it was, so it must not count those loads as processed: its
    watermark stays behind them and its next build takes them in. `upstreams` is a list of (model, the
    load manifest sources its rows come from) pairs; see taken_in_through. When every source delivers
    rows, as on a normal day, the stamp is the newest load. -#}
{% macro processed_through(upstreams) -%}
    least(
    {%- for upstream, sources in upstreams %}
        {{ taken_in_through(upstream, sources) }}{{ ',' if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}

{#- The newest load `upstream` has taken in: its stamp (the newest load it had taken in when it last
    wrote rows, 1900-01-01 for none), or the newest load of all when no load of its sources that brought
    rows (or corrected a file) came after that stamp: the loads since brought it nothing to take in (a
    header-only file of a quiet day, a file whose every row was quarantined, another source's file). -#}
{% macro taken_in_through(upstream, sources) -%}
    (
        select
            case
                when newest_of_sources.loaded_at > stamped.loaded_through then stamped.loaded_through
                else newest.loaded_at
            end
        from (
            select coalesce(max(loaded_through), cast('1900-01-01' as timestamp)) as loaded_through
            from {{ upstream }}
        ) as stamped
        cross join (
            select max(loaded_at) as loaded_at
            from {{ source('raw', 'load_manifest') }}
            where
                source in ('{{ sources | join("', '") }}')
                and (status = 'replaced' or (status = 'loaded' and rows_loaded > 0))
        ) as newest_of_sources
        cross join (select max(loaded_at) as loaded_at from {{ source('raw', 'load_manifest') }}) as newest
    )
{%- endmacro %}

{#- Whether a corrected file was loaded since the model last ran: the only way a whole order can leave
    an upstream model (all its raw rows replaced away), which only a scan of the whole model finds. -#}
{% macro files_replaced_since_watermark() -%}
    {%- set replaced = run_query("select count(*) from (" ~ replaced_files_since_watermark() ~ ") as replaced") -%}
    {{ return(replaced.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- Pre-hook of the event trail: delete the events of orders that left int_orders_current. An order
    leaves it when its versions are rewritten into none it keeps, or when a corrected file takes all its
    raw rows away. -#}
{% macro delete_events_of_vanished_orders() -%}
    {%- if keyed_incremental() -%}
    delete from {{ this }}
    where order_id not in (select order_id from {{ ref('int_orders_current') }})
    {%- if not files_replaced_since_watermark() %}
        and order_id in ({{ orders_rewritten_in(ref('int_order_versions_sequenced')) }})
    {%- endif %}
    {%- elif is_incremental() and audit_incremental_strategy() == 'delete+insert' -%}
    delete from {{ this }} where order_id not in (select order_id from {{ ref('int_orders_current') }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Order-keyed incremental models downstream of an order-keyed model `upstream` (one that stamps every
    row it rewrites with loaded_through): a run rebuilds every order whose upstream rows were rewritten
    since this model's own watermark, all of the order's rows at once (delete+insert by order_id). -#}
{% macro orders_rewritten_in(upstream) -%}
    select distinct order_id
    from {{ upstream }}
    where loaded_through > {{ watermark() }}
{%- endmacro %}

{#- Pre-hook of those models: delete the rows of every order this run rebuilds, so an order rebuilt into
    fewer rows (a new version with fewer lines) or into none keeps no row of before, and, after a
    correction, the rows of orders that left `upstream`. -#}
{% macro delete_rows_of_rewritten_orders(upstream) -%}
    {%- if keyed_incremental() -%}
    delete from {{ this }} as target
    where target.order_id in ({{ orders_rewritten_in(upstream) }})
    {%- if files_replaced_since_watermark() %}
        or not exists (select 1 from {{ upstream }} as upstream_rows where upstream_rows.order_id = target.order_id)
    {%- endif %}
    {%- elif is_incremental() and audit_incremental_strategy() == 'delete+insert' -%}
    {#- a table from before the watermark: the full-build branch rewrites every order upstream has, so
        only those upstream has no more are left to delete -#}
    delete from {{ this }} as target
    where not exists (select 1 from {{ upstream }} as upstream_rows where upstream_rows.order_id = target.order_id)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the incremental marts: their key column is NOT NULL (the contract's constraint), also in a
    table an earlier release created without it (a constraint is applied only when a table is created,
    and these tables are never rebuilt). Costs one catalog query a run. -#}
{% macro keep_key_not_null(column) -%}
    {{ return(adapter.dispatch('keep_key_not_null', 'order_audit')(column)) }}
{%- endmacro %}

{% macro duckdb__keep_key_not_null(column) -%}
    {%- set nullable = none -%}
    {%- if execute and is_incremental() and this is not string -%}
        {%- set nullable = run_query(
            "select is_nullable from duckdb_columns() where database_name = '" ~ this.database
            ~ "' and schema_name = '" ~ this.schema ~ "' and table_name = '" ~ this.identifier
            ~ "' and column_name = '" ~ column ~ "'"
        ) -%}
    {%- endif -%}
    {%- if nullable is not none and nullable.rows | length > 0 and nullable.rows[0][0] -%}
    alter table {{ this }} alter column {{ column }} set not null
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Spark: dbt-spark applies the contract's constraints itself where the table format supports them. -#}
{% macro default__keep_key_not_null(column) -%}
    select 1
{%- endmacro %}

{#- The orders int_orders_assessed re-assesses (DuckDB's incremental branch): every order whose
    assessment a load since the model's watermark can have changed. A superset is harmless (the order is
    assessed again, to the same row); a missing order would keep a stale row, so each input is covered:
    - the order's current version and lines (rewritten in int_orders_current / int_order_lines_current);
    - its payments and movements: of every payment or movement id delivered anew, each order any current
      delivery of that id names (where the event is now and where it was before);
    - OVERSOLD's running on-hand: the shipments of each (sku, warehouse) a delivery of such a movement
      names, from the earliest occurred_at any of them gives (a movement's change moves every later
      on-hand of its stock, whichever order shipped it);
    - the catalog: the orders with a line of a sku a new catalog row names.
    A corrected file (the earlier delivery moved to raw.<table>_superseded, which the models do not read),
    the first catalog ever, or other rules (assessment_fingerprint): every order. -#}
{% macro orders_to_assess() -%}
    {%- if files_replaced_since_watermark() or catalog_first_loaded_since_watermark() or assessed_under_other_rules() -%}
    select order_id from {{ ref('int_orders_current') }}
    {%- else -%}
    {%- set payments = source('raw', 'payments') -%}
    {%- set movements = source('raw', 'inventory_movements') -%}
    select order_id from {{ ref('int_orders_current') }} where loaded_through > {{ watermark() }}
    union
    select order_id from {{ ref('int_order_lines_current') }} where loaded_through > {{ watermark() }}
    union
    select {{ trimmed_id('order_id') }} as order_id
    from {{ payments }}
    where {{ trimmed_id('payment_id') }} in (
        {{ ids_delivered_since_watermark(payments, 'payment_id') }}
    )
    union
    select {{ trimmed_id('order_id') }} as order_id
    from {{ movements }}
    where {{ trimmed_id('movement_id') }} in (
        {{ ids_delivered_since_watermark(movements, 'movement_id') }}
    )
    union
    select shipments.order_id
    from {{ ref('stg_wms__inventory_movements') }} as shipments
    inner join (
        select
            {{ trimmed_id('sku') }} as sku,
            {{ trimmed_id('warehouse_id') }} as warehouse_id,
            min({{ utc_timestamp('occurred_at') }}) as earliest_occurred_at
        from {{ movements }}
        where {{ trimmed_id('movement_id') }} in (
            {{ ids_delivered_since_watermark(movements, 'movement_id') }}
        )
        group by 1, 2
    ) as moved_stock
        on shipments.sku is not distinct from moved_stock.sku
        and shipments.warehouse_id is not distinct from moved_stock.warehouse_id
        and shipments.occurred_at >= moved_stock.earliest_occurred_at
    where shipments.movement_type = 'shipment'
    union
    select order_id
    from {{ ref('int_order_lines_current') }}
    where sku in (
        {{ ids_delivered_since_watermark(source('raw', 'products'), 'sku') }}
    )
    {%- endif -%}
{%- endmacro %}

{#- The ids (trimmed as staging trims them) of the rows of `raw_relation` the loads since the model's
    watermark delivered. -#}
{% macro ids_delivered_since_watermark(raw_relation, id_column) -%}
    select {{ trimmed_id(id_column) }} from {{ raw_relation }}
    where load_id in ({{ new_loads_since_watermark() }})
{%- endmacro %}

{#- Whether the catalog was empty before the loads since the model's watermark and is not now: every
    line's UNKNOWN_SKU and PRICE_MISMATCH start to be checked. -#}
{% macro catalog_first_loaded_since_watermark() -%}
    {%- set counts = run_query(
        "select count(*) filter (where load_id in (" ~ new_loads_since_watermark() ~ ")), count(*) from "
        ~ source('raw', 'products')
    ) -%}
    {%- set new_rows, all_rows = counts.rows[0][0], counts.rows[0][1] -%}
    {{ return(new_rows > 0 and new_rows == all_rows) }}
{%- endmacro %}

{#- Pre-hook of int_orders_assessed: delete the rows of orders int_orders_current no longer has (the
    model's insert only replaces the orders it re-assesses). -#}
{% macro delete_rows_of_vanished_orders(upstream) -%}
    {%- if is_incremental() and audit_incremental_strategy() == 'delete+insert' -%}
    delete from {{ this }} as target
    where not exists (select 1 from {{ upstream }} as upstream_rows where upstream_rows.order_id = target.order_id)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- What the rules of int_orders_assessed are: the project's models (their file checksums), its macros
    (their text) and the currency minor units they round to. A row assessed under other rules (a new
    release, an edited model or macro, other currency_minor_units) is assessed again, with every other
    order, at the next run: the incremental branch would re-assess only the orders new loads touched. -#}
{% macro assessment_fingerprint() -%}
    {%- set parts = [tojson(var('currency_minor_units'))] -%}
    {#- a unit test's graph is empty -#}
    {%- for node in graph.get('nodes', {}).values() | selectattr('resource_type', 'equalto', 'model') | sort(attribute='unique_id') -%}
        {%- do parts.append(node.unique_id ~ '=' ~ node.checksum.checksum) -%}
    {%- endfor -%}
    {%- for name in context[project_name] | sort -%}
        {%- do parts.append(name ~ '=' ~ local_md5(context[project_name][name].macro.macro_sql)) -%}
    {%- endfor -%}
    {{ return(local_md5(parts | join('|'))) }}
{%- endmacro %}

{#- Whether int_orders_assessed holds a row assessed under other rules than the current ones (every
    release of the model has recorded them). -#}
{% macro assessed_under_other_rules() -%}
    {%- set other = run_query(
        "select count(*) from " ~ this ~ " where rules_fingerprint is distinct from '" ~ assessment_fingerprint() ~ "'"
    ) -%}
    {{ return(other.rows[0][0] > 0) }}
{%- endmacro %}

{#- The raw landing tables on engines that do not read the DuckDB warehouse: Spark reads the Parquet
    export of every raw table (orchestration/ingest/export.py) from ORDER_AUDIT_RAW_PARQUET_DIR, one
    <table>.parquet per source table, as views in the schema `raw`, so models/staging/_sources.yml stays
    the one declaration of the sources. Run as an on-run-start hook; on DuckDB it does nothing. -#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources', 'order_audit')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
{%- endmacro %}

{#- With an in-memory catalog (the local profile) the catalog starts empty each run, and the files a
    previous run left in the warehouse dir would block re-creating its tables (LOCATION_ALREADY_EXISTS):
    drop the project's schemas with their files first. Never done against a persistent metastore. -#}
{% macro spark__register_raw_sources() -%}
    {%- if execute -%}
        {%- set catalog = run_query('set spark.sql.catalogImplementation').columns[1].values()[0] -%}
        {%- if catalog == 'in-memory' -%}
            {%- set schemas = graph.nodes.values() | selectattr('resource_type', 'in', ['model', 'seed'])
                | map(attribute='schema') | unique | list -%}
            {%- for schema in schemas -%}
                {%- do run_query('create schema if not exists ' ~ schema) -%}
                {%- do run_query('drop schema ' ~ schema ~ ' cascade') -%}
                {%- do run_query('create schema ' ~ schema) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- set parquet_dir = env_var('ORDER_AUDIT_RAW_PARQUET_DIR', '../data/parquet/raw') | trim -%}
        {%- set raw_schema = graph.sources.values() | selectattr('source_name', 'equalto', 'raw') | list -%}
        {%- do run_query('create schema if not exists raw') -%}
        {%- for node in raw_schema -%}
            {%- do run_query(
                "create or replace view raw." ~ node.identifier
                ~ " as select * from parquet.`" ~ parquet_dir ~ "/" ~ node.identifier ~ ".parquet`"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

"""Read-only BI dashboard over the published serving DuckDB file (Streamlit).

- `source`: where the serving file is, its identity on disk, and short-lived read-only readers.
- `money`: exact decimal amounts as display strings (never floats).
- `data`: the queries, each over one reader, returning plain values and DataFrames.
- `loaders`: Streamlit caching of those queries, keyed by the file's identity.
- `app`: the Streamlit page; `launch`: `streamlit run` it.
"""

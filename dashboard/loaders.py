"""Streamlit caching of the dashboard's reads.

Results (never connections) are cached for a short time, keyed by the serving file's path and its
signature on disk, so a new publish (a rename: new inode and mtime) is picked up on the next render,
and each cache miss opens its own short-lived read-only reader.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.data import (
    MartSnapshot,
    OrderTrail,
    TriageView,
    read_exception_history,
    read_order_trail,
    read_snapshot,
    read_triage,
)
from dashboard.source import FileSignature, open_reader

CACHE_TTL_SECONDS = 60

SignatureKey = tuple[int, int, int]


def signature_key(signature: FileSignature) -> SignatureKey:
    return (signature.inode, signature.mtime_ns, signature.size)


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=8, show_spinner=False)
def load_snapshot(path: str, signature: SignatureKey) -> MartSnapshot:
    """The overview of the mart at `path` (`signature` only keys the cache)."""
    with open_reader(Path(path)) as con:
        return read_snapshot(con)


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=256, show_spinner=False)
def load_order_trail(path: str, signature: SignatureKey, order_id: str) -> OrderTrail:
    """One order's audit trail and exceptions from the mart at `path`."""
    with open_reader(Path(path)) as con:
        return read_order_trail(con, order_id)


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=64, show_spinner=False)
def load_triage(path: str, signature: SignatureKey, owner: str | None, route: str | None) -> TriageView:
    """The active exception queue of one owner team and route (None: all) from the mart at `path`."""
    with open_reader(Path(path)) as con:
        return read_triage(con, owner, route)


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=256, show_spinner=False)
def load_exception_history(path: str, signature: SignatureKey, exception_id: str) -> pd.DataFrame:
    """One exception's history from the mart at `path`."""
    with open_reader(Path(path)) as con:
        return read_exception_history(con, exception_id)


def clear() -> None:
    load_snapshot.clear()
    load_order_trail.clear()
    load_triage.clear()
    load_exception_history.clear()

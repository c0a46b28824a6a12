//! The store contract run against SQLite, each check on a fresh database
//! file in a temporary directory.

use std::sync::Arc;

use super::{SqliteOptions, SqliteStore};
use crate::contract::Fresh;

fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("contract.db"))).unwrap();
    let store = Arc::new(store);
    Fresh {
        store: store.clone(),
        messages: store,
        keep: Box::new(dir),
    }
}

crate::store_contract!(fresh);

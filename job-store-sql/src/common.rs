//! What every backend's queries need that does not depend on the database: pages, the
//! mapping of sqlx errors to [`job_core::Error`] and enum texts.

use job_core::Error;
use job_core::store::{Page, checks};
use serde::de::DeserializeOwned;

/// Rows per multi-row insert (well below both backends' bind-parameter limits).
pub(crate) const INSERT_CHUNK: usize = 2000;

/// Turns `limit + 1` fetched items into a page of at most `limit` with its next cursor.
pub(crate) fn page<T, K>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Page<T, K> {
    let limit = limit as usize;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

/// Maps a sqlx error of the operation `what` to the platform's error.
pub(crate) fn db_error(what: &str, e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return Error::conflict(format!("{what}: it already exists"));
        }
        if d.is_foreign_key_violation() {
            return Error::conflict(format!(
                "{what}: it refers to something that does not exist, or is still referred to"
            ));
        }
        if d.is_check_violation() {
            return Error::invalid(what, d.message().to_owned());
        }
    }
    Error::unavailable(format!("{what} failed"), e)
}

/// [`db_error`] as a closure for `map_err`.
pub(crate) fn db(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| db_error(what, e)
}

/// The text of an enum by its serde name (`"snake_case"`).
pub(crate) fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An enum back from its serde name.
pub(crate) fn enum_of<T: DeserializeOwned>(col: &str, text: String) -> job_core::Result<T> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| checks::corrupt(col, e))
}

//! Where SQLite's errors become [`StoreError`]s: the one place the
//! backend-neutral interface meets `rusqlite`'s error type. Every `?` on a
//! SQLite call in this backend goes through this mapping.

use rusqlite::ErrorCode;

use crate::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            | Some(ErrorCode::DiskFull | ErrorCode::CannotOpen) => {
                StoreError::Unavailable(Box::new(e))
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => match e {
                // A column that does not read back as what was written.
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => {
                    StoreError::Corrupt(e.to_string())
                }
                e => StoreError::Internal(Box::new(e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_are_unavailable() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let e = StoreError::from(failure(code));
            assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        }
    }

    #[test]
    fn a_corrupt_file_is_corrupt() {
        let e = StoreError::from(failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
    }

    #[test]
    fn other_failures_keep_sqlite_as_their_source() {
        let e = StoreError::from(rusqlite::Error::QueryReturnedNoRows);
        let StoreError::Internal(source) = &e else {
            panic!("{e:?}");
        };
        assert!(source.downcast_ref::<rusqlite::Error>().is_some());
        assert!(std::error::Error::source(&e).is_some());
    }
}

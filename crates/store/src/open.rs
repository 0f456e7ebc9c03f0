//! Opening a store by URL: the scheme chooses the adapter (`sqlite:` or `postgres://` /
//! `postgresql://`), and every adapter offers the same schema and pool management.

use std::sync::Arc;

use async_trait::async_trait;
use integr8s_core::ports::Store;
use integr8s_core::StoreError;
use thiserror::Error;

/// A store opened from a URL: every port, plus what the composition root does with the
/// database itself.
#[async_trait]
pub trait DatabaseStore: Store {
    /// Applies the embedded migrations that are not applied yet. Safe to run from several
    /// processes at once.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Closes the pools, waiting for checked-out connections to be returned.
    async fn close(&self);
}

/// The database engines a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL whose scheme no adapter of this build serves.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UnsupportedUrl {
    #[error("unsupported database url {0:?}: expected sqlite://…, postgres://… or postgresql://…")]
    UnknownScheme(String),
    #[error(
        "database url {0:?} needs PostgreSQL support, which this build lacks \
         (feature postgres of integr8s-store)"
    )]
    NotBuilt(String),
}

impl Backend {
    /// The backend a URL names by its scheme. Checks that this build has the adapter.
    pub fn from_url(url: &str) -> Result<Self, UnsupportedUrl> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if cfg!(feature = "postgres") {
                Ok(Self::Postgres)
            } else {
                Err(UnsupportedUrl::NotBuilt(redact_url(url)))
            }
        } else {
            Err(UnsupportedUrl::UnknownScheme(redact_url(url)))
        }
    }
}

/// Opens the store `url` names (see [`Backend::from_url`]). Does not run migrations.
pub async fn open(url: &str) -> Result<Arc<dyn DatabaseStore>, StoreError> {
    let backend = Backend::from_url(url).map_err(|e| StoreError::Other(e.to_string()))?;
    tracing::debug!(url = %redact_url(url), ?backend, "opening store");
    Ok(match backend {
        Backend::Sqlite => Arc::new(crate::SqliteStore::open(url).await?),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Arc::new(crate::PostgresStore::open(url).await?),
        #[cfg(not(feature = "postgres"))]
        Backend::Postgres => {
            return Err(StoreError::Other(
                UnsupportedUrl::NotBuilt(redact_url(url)).to_string(),
            ))
        }
    })
}

/// The URL with its password (if any) replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_the_backend() {
        assert_eq!(Backend::from_url("sqlite://data/x.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::from_url("sqlite::memory:"), Ok(Backend::Sqlite));
        let postgres = Backend::from_url("postgres://u@localhost/db");
        let postgresql = Backend::from_url("postgresql://u@localhost/db");
        if cfg!(feature = "postgres") {
            assert_eq!(postgres, Ok(Backend::Postgres));
            assert_eq!(postgresql, Ok(Backend::Postgres));
        } else {
            assert!(matches!(postgres, Err(UnsupportedUrl::NotBuilt(_))));
        }
    }

    #[test]
    fn an_unknown_scheme_is_refused_without_its_password() {
        let err = Backend::from_url("mysql://root:hunter2@db/x").unwrap_err();
        assert!(matches!(err, UnsupportedUrl::UnknownScheme(_)));
        let message = err.to_string();
        assert!(message.contains("mysql://root:***@db/x"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(Backend::from_url("data/x.db").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.internal:5432/integr8s?sslmode=require"),
            "postgres://app:***@db.internal:5432/integr8s?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app@localhost/x"),
            "postgres://app@localhost/x"
        );
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}

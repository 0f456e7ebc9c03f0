//! Errors that stop a run before or after it measured anything (failures during the run are
//! measurements, not errors).

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("invalid options: {0}")]
    Config(String),
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the server at {base} is not usable: {detail}")]
    Preflight { base: String, detail: String },
    #[error("no virtual user could sign in: {0}")]
    SignIn(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding the report: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("drawing {path}: {detail}")]
    Plot { path: PathBuf, detail: String },
}

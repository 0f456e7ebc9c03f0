//! Editor bootstrap data: example scripts and the resource limits with the supported runtimes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/example-scripts", get(example_scripts))
        .route("/api/v1/k8s-limits", get(limits))
}

const EXAMPLES: [(&str, &str); 5] = [
    (
        "python",
        "import sys\n\nnames = [\"Ada\", \"Grace\", \"Linus\"]\nfor i, name in enumerate(names, 1):\n    print(f\"{i}. Hello, {name}!\")\n\nprint(\"Python\", sys.version.split()[0])\n",
    ),
    (
        "node",
        "const squares = [1, 2, 3, 4, 5].map((n) => n * n);\nconsole.log(\"Squares:\", squares.join(\", \"));\nconsole.log(\"Node\", process.version);\n",
    ),
    (
        "ruby",
        "words = %w[sandbox script result]\nwords.each_with_index { |w, i| puts \"#{i + 1}: #{w.capitalize}\" }\nputs \"Ruby #{RUBY_VERSION}\"\n",
    ),
    (
        "bash",
        "#!/bin/bash\nfor i in 1 2 3; do\n  echo \"Line $i\"\ndone\necho \"Bash $BASH_VERSION\"\n",
    ),
    (
        "go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"runtime\"\n)\n\nfunc main() {\n\tsum := 0\n\tfor i := 1; i <= 10; i++ {\n\t\tsum += i\n\t}\n\tfmt.Println(\"Sum of 1..10 =\", sum)\n\tfmt.Println(\"Go\", runtime.Version())\n}\n",
    ),
];

fn cached<T: Serialize>(body: &T, cache_control: &'static str) -> Response {
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// The contract's `ExampleScripts`: an example program per language.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExampleScripts {
    pub scripts: BTreeMap<String, String>,
}

async fn example_scripts() -> Response {
    let scripts = EXAMPLES
        .into_iter()
        .map(|(lang, code)| (lang.to_owned(), code.to_owned()))
        .collect();
    cached(&ExampleScripts { scripts }, "public, max-age=600")
}

/// The contract's `LanguageInfo`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LanguageInfo {
    pub versions: Vec<String>,
    pub file_ext: String,
}

/// The contract's `ResourceLimits`: what new executions get.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ResourceLimits {
    pub cpu_limit: String,
    pub memory_limit: String,
    pub cpu_request: String,
    pub memory_request: String,
    pub execution_timeout: u64,
    pub supported_runtimes: BTreeMap<String, LanguageInfo>,
}

async fn limits(State(state): State<AppState>) -> Response {
    // The runtimes of the live workers (see `crate::workers`), read at most a second ago.
    let registry = match state.workers.runtimes(&state, false).await {
        Ok(registry) => registry,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let runtimes: BTreeMap<String, LanguageInfo> = registry
        .runtimes()
        .iter()
        .filter_map(|r| {
            let versions: Vec<String> = r
                .versions
                .iter()
                .filter(|v| v.available)
                .map(|v| v.version.clone())
                .collect();
            (!versions.is_empty()).then(|| {
                (
                    r.lang.clone(),
                    LanguageInfo {
                        versions,
                        file_ext: r.file_ext.clone(),
                    },
                )
            })
        })
        .collect();
    let cfg = &state.config;
    // The limits new executions get: the effective system settings.
    let settings = match crate::routes::admin::settings::effective_settings(&state).await {
        Ok(settings) => settings,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let limits = ResourceLimits {
        cpu_limit: settings.cpu_limit,
        memory_limit: settings.memory_limit,
        cpu_request: cfg.cpu_request.clone(),
        memory_request: cfg.memory_request.clone(),
        execution_timeout: settings.max_timeout_seconds,
        supported_runtimes: runtimes,
    };
    cached(&limits, "public, max-age=300")
}

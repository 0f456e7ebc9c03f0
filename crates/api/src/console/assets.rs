//! The embedded files of the console (`crates/api/console/`), with their media types.

pub struct Asset {
    /// The path under `/console/{version}/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../console/", $path)),
        }
    };
}

pub const INDEX: Asset = asset!("index.html", HTML);

pub const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/highlight.js", JS),
    asset!("js/editor.js", JS),
    asset!("js/table.js", JS),
    asset!("js/pages/auth.js", JS),
    asset!("js/pages/run.js", JS),
    asset!("js/pages/history.js", JS),
    asset!("js/pages/scripts.js", JS),
    asset!("js/pages/settings.js", JS),
    asset!("js/pages/notifications.js", JS),
    asset!("js/pages/admin.js", JS),
    asset!("js/pages/admin/users.js", JS),
    asset!("js/pages/admin/executions.js", JS),
    asset!("js/pages/admin/events.js", JS),
    asset!("js/pages/admin/dlq.js", JS),
    asset!("js/pages/admin/rate-limits.js", JS),
    asset!("js/pages/admin/settings.js", JS),
    asset!("js/pages/admin/replay.js", JS),
];

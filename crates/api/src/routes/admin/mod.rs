//! Admin routes (all require the admin role).

pub mod events;
mod events_export;
pub mod events_schema;
pub mod executions;
pub mod rate_limits;
pub mod replay;
pub mod settings;
pub mod user_overview;
pub mod users;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(executions::router())
        .merge(events::router())
        .merge(settings::router())
        .merge(rate_limits::router())
        .merge(replay::router())
}

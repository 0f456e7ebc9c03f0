//! Path templates: every request is counted under its method and the route it hits
//! (`/api/v1/executions/{execution_id}/result`), not under its concrete path, so ids and queries
//! do not split the figures. Paths that match no route are counted together.

use serde::Serialize;

/// Routes of the HTTP API (the contract's and this implementation's additions).
pub const ROUTES: &[&str] = &[
    "/",
    "/openapi.json",
    "/metrics",
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/me",
    "/api/v1/auth/logout",
    "/api/v1/execute",
    "/api/v1/executions/{execution_id}",
    "/api/v1/executions/{execution_id}/result",
    "/api/v1/executions/{execution_id}/cancel",
    "/api/v1/executions/{execution_id}/retry",
    "/api/v1/executions/{execution_id}/events",
    "/api/v1/user/executions",
    "/api/v1/example-scripts",
    "/api/v1/k8s-limits",
    "/api/v1/scripts",
    "/api/v1/scripts/{script_id}",
    "/api/v1/replay/sessions",
    "/api/v1/replay/sessions/{session_id}",
    "/api/v1/replay/sessions/{session_id}/start",
    "/api/v1/replay/sessions/{session_id}/pause",
    "/api/v1/replay/sessions/{session_id}/resume",
    "/api/v1/replay/sessions/{session_id}/cancel",
    "/api/v1/replay/cleanup",
    "/api/v1/health/live",
    "/api/v1/health/ready",
    "/api/v1/events/notifications/stream",
    "/api/v1/events/executions/{execution_id}",
    "/api/v1/admin/events/browse",
    "/api/v1/admin/events/stats",
    "/api/v1/admin/events/export/{export_format}",
    "/api/v1/admin/events/replay",
    "/api/v1/admin/events/replay/{session_id}/status",
    "/api/v1/admin/events/{event_id}",
    "/api/v1/admin/executions/",
    "/api/v1/admin/executions/queue",
    "/api/v1/admin/executions/{execution_id}/priority",
    "/api/v1/admin/rate-limits/defaults",
    "/api/v1/admin/rate-limits/{user_id}",
    "/api/v1/admin/rate-limits/{user_id}/reset",
    "/api/v1/admin/settings/",
    "/api/v1/admin/settings/reset",
    "/api/v1/admin/settings/audit",
    "/api/v1/admin/users/",
    "/api/v1/admin/users/{user_id}",
    "/api/v1/admin/users/{user_id}/overview",
    "/api/v1/admin/users/{user_id}/reset-password",
    "/api/v1/admin/users/{user_id}/unlock",
    "/api/v1/user/settings/",
    "/api/v1/user/settings/theme",
    "/api/v1/user/settings/notifications",
    "/api/v1/user/settings/editor",
    "/api/v1/user/settings/history",
    "/api/v1/user/settings/restore",
    "/api/v1/user/settings/custom/{key}",
    "/api/v1/notifications",
    "/api/v1/notifications/{notification_id}",
    "/api/v1/notifications/{notification_id}/read",
    "/api/v1/notifications/mark-all-read",
    "/api/v1/notifications/subscriptions",
    "/api/v1/notifications/subscriptions/{channel}",
    "/api/v1/notifications/unread-count",
    "/api/v1/sagas/",
    "/api/v1/sagas/{saga_id}",
    "/api/v1/sagas/{saga_id}/cancel",
    "/api/v1/sagas/execution/{execution_id}",
    "/api/v1/dlq/stats",
    "/api/v1/dlq/messages",
    "/api/v1/dlq/messages/{message_id}",
    "/api/v1/dlq/messages/{message_id}/retry",
    "/api/v1/dlq/messages/{message_id}/discard",
];

/// What a path counts under when it matches no route.
pub const UNMATCHED: &str = "(unmatched)";

/// The route template `path` (with or without a query) hits: literal segments match exactly,
/// `{name}` segments match any one non-empty segment, and of several matching routes the one
/// with the most literal segments wins (`/scripts/{id}` never shadows `/user/settings/theme`).
pub fn template(path: &str) -> &'static str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&'static str, usize)> = None;
    for route in ROUTES {
        let parts: Vec<&str> = route.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literals = 0;
        let matches = parts.iter().zip(&segments).all(|(part, seg)| {
            if part.starts_with('{') && part.ends_with('}') {
                !seg.is_empty()
            } else {
                literals += 1;
                part == seg
            }
        });
        if matches && best.is_none_or(|(_, n)| literals > n) {
            best = Some((route, literals));
        }
    }
    best.map_or(UNMATCHED, |(route, _)| route)
}

/// What the latency of an endpoint means, so that figures of unlike requests are not mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Ordinary API requests: the figures that tell how fast the server answers.
    Api,
    /// Login and registration: deliberately slow password hashing.
    Auth,
    /// Submitting an execution (stores and publishes it).
    Execution,
    /// Event streams: the latency is the time to the stream's first bytes.
    Stream,
}

pub fn group_of(method: &str, template: &str) -> Group {
    match (method, template) {
        ("POST", "/api/v1/auth/login" | "/api/v1/auth/register") => Group::Auth,
        ("POST", "/api/v1/execute") => Group::Execution,
        (_, t) if t.starts_with("/api/v1/events/") => Group::Stream,
        _ => Group::Api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_queries_collapse_into_the_route() {
        assert_eq!(
            template("/api/v1/executions/0b6a4c1e-5a3b-4f0e-9d7a-2f1e1c0a9b8c/result"),
            "/api/v1/executions/{execution_id}/result"
        );
        assert_eq!(
            template("/api/v1/executions/x/events?limit=5&event_types=a"),
            "/api/v1/executions/{execution_id}/events"
        );
        assert_eq!(template("/api/v1/scripts?x=1"), "/api/v1/scripts");
        assert_eq!(
            template("/api/v1/scripts/abc#frag"),
            "/api/v1/scripts/{script_id}"
        );
    }

    #[test]
    fn literal_routes_win_over_parameters() {
        assert_eq!(
            template("/api/v1/notifications/mark-all-read"),
            "/api/v1/notifications/mark-all-read"
        );
        assert_eq!(
            template("/api/v1/notifications/unread-count"),
            "/api/v1/notifications/unread-count"
        );
        assert_eq!(
            template("/api/v1/notifications/subscriptions"),
            "/api/v1/notifications/subscriptions"
        );
        assert_eq!(
            template("/api/v1/notifications/n-1"),
            "/api/v1/notifications/{notification_id}"
        );
        assert_eq!(
            template("/api/v1/admin/events/replay"),
            "/api/v1/admin/events/replay"
        );
        assert_eq!(
            template("/api/v1/admin/events/e-1"),
            "/api/v1/admin/events/{event_id}"
        );
    }

    #[test]
    fn trailing_slashes_and_empty_segments_are_told_apart() {
        assert_eq!(template("/api/v1/user/settings/"), "/api/v1/user/settings/");
        assert_eq!(template("/api/v1/user/settings"), UNMATCHED);
        assert_eq!(template("/api/v1/scripts/"), UNMATCHED);
        assert_eq!(template("/api/v1/executions//result"), UNMATCHED);
    }

    #[test]
    fn unknown_paths_count_together() {
        for p in [
            "/nope",
            "/api/v1/does-not-exist",
            "",
            "/api/v1/scripts/a/b/c",
            "//",
        ] {
            assert_eq!(template(p), UNMATCHED, "{p}");
        }
        assert_eq!(template("/"), "/");
    }

    #[test]
    fn every_route_is_its_own_template() {
        for route in ROUTES {
            assert_eq!(template(route), *route);
        }
    }

    #[test]
    fn groups_keep_slow_by_design_requests_apart() {
        assert_eq!(group_of("POST", "/api/v1/auth/login"), Group::Auth);
        assert_eq!(group_of("GET", "/api/v1/auth/login"), Group::Api);
        assert_eq!(group_of("POST", "/api/v1/execute"), Group::Execution);
        assert_eq!(
            group_of("GET", "/api/v1/events/executions/{execution_id}"),
            Group::Stream
        );
        assert_eq!(group_of("GET", "/api/v1/scripts"), Group::Api);
    }
}

//! Rule selection: compiled patterns, the rule that applies to a path, the effective limit.

use std::time::Duration;

use integr8s_core::ports::ratelimit::{LimitSpec, RateLimitRule, UserRateLimit};
use regex_lite::Regex;

/// A rule with its pattern compiled (anchored at the start of the path and at a segment
/// boundary).
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: RateLimitRule,
    regex: Regex,
}

/// Compiles `pattern` the way rules are matched: from the start of the path to a segment
/// boundary, i.e. the match ends at the end of the path, before a `/`, or with a `/` of its own.
/// So `^/api/v1/execute` matches `/api/v1/execute` (and `/api/v1/execute/…`) but not
/// `/api/v1/executions/…`, while `^/api/v1/.*` and `^/api/v1/user/` match what they start.
pub fn compile_pattern(pattern: &str) -> Result<Regex, regex_lite::Error> {
    if pattern.ends_with('/') {
        Regex::new(&format!("^(?:{pattern})"))
    } else {
        Regex::new(&format!("^(?:{pattern})(?:/.*)?$"))
    }
}

impl CompiledRule {
    pub fn new(rule: RateLimitRule) -> Result<Self, regex_lite::Error> {
        let regex = compile_pattern(&rule.endpoint_pattern)?;
        Ok(Self { rule, regex })
    }

    fn matches(&self, path: &str) -> bool {
        self.rule.enabled && self.regex.is_match(path)
    }
}

/// Compiles rules, dropping (and logging) any whose pattern is not a valid expression.
pub fn compile_all(rules: &[RateLimitRule]) -> Vec<CompiledRule> {
    rules
        .iter()
        .filter_map(|rule| match CompiledRule::new(rule.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(pattern = %rule.endpoint_pattern, error = %e, "rate-limit rule ignored");
                None
            }
        })
        .collect()
}

/// The rule for `path`: the highest priority among the user's rules and the defaults; on equal
/// priority a user's rule wins.
pub fn select<'a>(
    user_rules: &'a [CompiledRule],
    defaults: &'a [CompiledRule],
    path: &str,
) -> Option<&'a CompiledRule> {
    let mut best: Option<&CompiledRule> = None;
    for candidate in user_rules.iter().chain(defaults) {
        if candidate.matches(path) && best.is_none_or(|b| candidate.rule.priority > b.rule.priority)
        {
            best = Some(candidate);
        }
    }
    best
}

/// The limit of `rule` for a user with `config` (multiplier applied, at least one request).
pub fn effective(rule: &RateLimitRule, config: Option<&UserRateLimit>) -> LimitSpec {
    let multiplier = config.map_or(1.0, |c| c.global_multiplier);
    let scaled = (f64::from(rule.requests) * multiplier).floor();
    let requests = if scaled.is_finite() && scaled >= 1.0 {
        scaled.min(f64::from(u32::MAX)) as u32
    } else {
        1
    };
    LimitSpec {
        algorithm: rule.algorithm,
        requests,
        window: Duration::from_secs(u64::from(rule.window_seconds.max(1))),
        burst_multiplier: rule.burst_multiplier,
    }
}

#[cfg(test)]
mod tests {
    use integr8s_core::ports::ratelimit::{EndpointGroup, RateLimitAlgorithm};

    use super::*;

    fn defaults() -> Vec<CompiledRule> {
        compile_all(&RateLimitRule::defaults())
    }

    #[test]
    fn defaults_pick_the_most_specific_group() {
        let d = defaults();
        let group = |p: &str| select(&[], &d, p).map(|c| c.rule.group);
        assert_eq!(group("/api/v1/execute"), Some(EndpointGroup::Execution));
        assert_eq!(group("/api/v1/auth/me"), Some(EndpointGroup::Auth));
        assert_eq!(group("/api/v1/admin/users/"), Some(EndpointGroup::Admin));
        assert_eq!(
            group("/api/v1/events/executions/x"),
            Some(EndpointGroup::Sse)
        );
        assert_eq!(group("/api/v1/user/executions"), Some(EndpointGroup::Api));
        assert_eq!(group("/api/v1/health/live"), Some(EndpointGroup::Api));
        assert_eq!(group("/health"), None);
        assert_eq!(
            group("/x/api/v1/execute"),
            None,
            "patterns match from the start"
        );
    }

    fn general_rule() -> RateLimitRule {
        RateLimitRule::defaults()
            .into_iter()
            .find(|r| r.endpoint_pattern == "^/api/v1/.*")
            .unwrap()
    }

    #[test]
    fn patterns_end_at_a_path_segment() {
        let d = defaults();
        let pattern = |p: &str| select(&[], &d, p).map(|c| c.rule.endpoint_pattern.clone());
        let execute = Some("^/api/v1/execute".to_owned());
        assert_eq!(pattern("/api/v1/execute"), execute);
        assert_eq!(pattern("/api/v1/execute/"), execute);
        for path in [
            "/api/v1/executions/x/result",
            "/api/v1/executions/x/cancel",
            "/api/v1/executex",
        ] {
            assert_eq!(pattern(path), Some("^/api/v1/.*".to_owned()), "{path}");
        }
        assert_eq!(pattern("/api/v1/wsx"), Some("^/api/v1/.*".to_owned()));
        assert_eq!(pattern("/api/v1/ws"), Some("^/api/v1/ws".to_owned()));
        assert_eq!(
            pattern("/api/v1/auth/me"),
            Some("^/api/v1/auth/me".to_owned())
        );
        assert_eq!(
            pattern("/api/v1/auth/meh"),
            Some("^/api/v1/auth/.*".to_owned())
        );
        assert_eq!(
            pattern("/api/v1/notifications/unread-count"),
            pattern("/api/v1/notifications")
        );
        assert_eq!(
            pattern("/api/v1/user/settings/"),
            pattern("/api/v1/user/settings")
        );
        assert_ne!(
            pattern("/api/v1/user/settingsx"),
            pattern("/api/v1/user/settings")
        );
        let slash = compile_all(&[RateLimitRule {
            endpoint_pattern: "/api/v1/user/".to_owned(),
            ..general_rule()
        }]);
        assert!(slash[0].matches("/api/v1/user/executions"));
        assert!(!slash[0].matches("/api/v1/users"));
    }

    #[test]
    fn user_rules_compete_by_priority_and_multiplier_scales() {
        let d = defaults();
        let mut mine = general_rule();
        mine.endpoint_pattern = "/api/v1/user/.*".into();
        mine.requests = 7;
        mine.priority = 1;
        mine.algorithm = RateLimitAlgorithm::TokenBucket;
        let user = compile_all(&[mine]);
        let chosen = select(&user, &d, "/api/v1/user/executions").unwrap();
        assert_eq!(chosen.rule.requests, 7, "a user rule wins a tie");
        assert_eq!(
            select(&user, &d, "/api/v1/execute").unwrap().rule.requests,
            10
        );

        let mut disabled = RateLimitRule::defaults()[0].clone();
        disabled.enabled = false;
        disabled.priority = 100;
        let user = compile_all(&[disabled]);
        assert_eq!(
            select(&user, &d, "/api/v1/execute").unwrap().rule.priority,
            10
        );

        let config = UserRateLimit {
            user_id: "u".into(),
            bypass_rate_limit: false,
            global_multiplier: 2.5,
            rules: Vec::new(),
            created_at: integr8s_core::now(),
            updated_at: integr8s_core::now(),
            notes: None,
        };
        assert_eq!(effective(&d[0].rule, Some(&config)).requests, 25);
        let tiny = UserRateLimit {
            global_multiplier: 0.01,
            ..config
        };
        assert_eq!(effective(&d[0].rule, Some(&tiny)).requests, 1);
        assert_eq!(effective(&d[0].rule, None).requests, 10);
    }
}

//! Per-user rate-limit overrides: durable upsert that keeps `created_at`, lookup and delete.

use super::*;
use crate::ports::ratelimit::{RateLimitAlgorithm, RateLimitRule, UserRateLimit};

pub async fn rate_limit_override_upsert_get_delete(store: S) {
    let user = store.create_user(&new_user("limited")).await.unwrap();
    assert_eq!(
        store.get_user_rate_limit(&user.user_id).await.unwrap(),
        None
    );

    let created = crate::now() - Duration::hours(1);
    let mut rule = RateLimitRule::defaults()[0].clone();
    rule.algorithm = RateLimitAlgorithm::TokenBucket;
    rule.requests = 3;
    let first = UserRateLimit {
        user_id: user.user_id.clone(),
        bypass_rate_limit: false,
        global_multiplier: 2.5,
        rules: vec![rule.clone()],
        created_at: created,
        updated_at: created,
        notes: Some("trial".to_owned()),
    };
    let saved = store.put_user_rate_limit(&first).await.unwrap();
    assert_eq!(saved, first);
    assert_eq!(
        store.get_user_rate_limit(&user.user_id).await.unwrap(),
        Some(first.clone())
    );

    let later = crate::now();
    let second = UserRateLimit {
        bypass_rate_limit: true,
        global_multiplier: 1.0,
        rules: Vec::new(),
        created_at: later,
        updated_at: later,
        notes: None,
        ..first.clone()
    };
    let replaced = store.put_user_rate_limit(&second).await.unwrap();
    assert_eq!(
        replaced.created_at, created,
        "created_at survives a replace"
    );
    assert_eq!(replaced.updated_at, later);
    assert!(replaced.bypass_rate_limit);
    assert!(replaced.rules.is_empty());
    assert_eq!(replaced.notes, None);

    assert!(store.delete_user_rate_limit(&user.user_id).await.unwrap());
    assert!(!store.delete_user_rate_limit(&user.user_id).await.unwrap());
    assert_eq!(
        store.get_user_rate_limit(&user.user_id).await.unwrap(),
        None
    );
}

//! PostgreSQL: notification subscriptions and the outbound delivery queue. Deliveries are
//! claimed with `FOR UPDATE SKIP LOCKED`, so senders in several processes never take the same
//! delivery while its lease runs.

use chrono::{DateTime, Utc};
use integr8s_core::notification::{NotificationChannel, NotificationDelivery, Subscription};
use integr8s_core::ports::DeliveryOutcome;
use integr8s_core::StoreError;
use sqlx::{PgConnection, PgPool};

use super::query::{execute, fetch_all, fetch_one, sql_limit};
use crate::codec::{to_json, ts};
use crate::rows::notification_deliveries::{
    decode_delivery, decode_subscription, DELIVERY_COLUMNS, SUB_COLUMNS,
};

pub(crate) async fn subscriptions(
    pool: &PgPool,
    user_id: &str,
) -> Result<Vec<Subscription>, StoreError> {
    let sql = format!(
        "SELECT {SUB_COLUMNS} FROM notification_subscriptions WHERE user_id = $1 ORDER BY channel"
    );
    fetch_all(sqlx::query(&sql).bind(user_id), pool, decode_subscription).await
}

pub(crate) async fn save_subscription(
    pool: &PgPool,
    s: &Subscription,
) -> Result<Subscription, StoreError> {
    let severities: Vec<&str> = s.severities.iter().map(|v| v.as_str()).collect();
    let sql = format!(
        "INSERT INTO notification_subscriptions ({SUB_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (user_id, channel) DO UPDATE SET
            enabled = excluded.enabled, severities = excluded.severities,
            include_tags = excluded.include_tags, exclude_tags = excluded.exclude_tags,
            webhook_url = excluded.webhook_url, slack_webhook = excluded.slack_webhook,
            webhook_secret = excluded.webhook_secret,
            quiet_hours_enabled = excluded.quiet_hours_enabled,
            quiet_hours_start = excluded.quiet_hours_start,
            quiet_hours_end = excluded.quiet_hours_end, timezone = excluded.timezone,
            batch_interval_minutes = excluded.batch_interval_minutes,
            updated_at = excluded.updated_at
         RETURNING {SUB_COLUMNS}"
    );
    let query = sqlx::query(&sql)
        .bind(&s.user_id)
        .bind(s.channel.as_str())
        .bind(s.enabled)
        .bind(to_json(&severities)?)
        .bind(to_json(&s.include_tags)?)
        .bind(to_json(&s.exclude_tags)?)
        .bind(&s.webhook_url)
        .bind(&s.slack_webhook)
        .bind(&s.webhook_secret)
        .bind(s.quiet_hours_enabled)
        .bind(&s.quiet_hours_start)
        .bind(&s.quiet_hours_end)
        .bind(&s.timezone)
        .bind(s.batch_interval_minutes)
        .bind(ts(s.created_at))
        .bind(ts(s.updated_at));
    fetch_one(query, pool, decode_subscription).await
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    d: &NotificationDelivery,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO notification_deliveries ({DELIVERY_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    let query = sqlx::query(&sql)
        .bind(&d.notification_id)
        .bind(d.channel.as_str())
        .bind(&d.user_id)
        .bind(d.status.as_str())
        .bind(&d.target_url)
        .bind(&d.secret)
        .bind(i64::from(d.attempts))
        .bind(i64::from(d.max_attempts))
        .bind(ts(d.next_attempt_at))
        .bind(&d.last_error)
        .bind(d.delivered_at.map(ts))
        .bind(ts(d.updated_at));
    execute(query, conn).await?;
    Ok(())
}

pub(crate) async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<NotificationDelivery>, StoreError> {
    let sql = format!(
        "UPDATE notification_deliveries
         SET status = 'sending', attempts = attempts + 1, next_attempt_at = $1, updated_at = $2
         WHERE (notification_id, channel) IN (
            SELECT notification_id, channel FROM notification_deliveries
            WHERE status IN ('pending', 'sending') AND next_attempt_at <= $2
            ORDER BY next_attempt_at LIMIT $3
            FOR UPDATE SKIP LOCKED)
         RETURNING {DELIVERY_COLUMNS}"
    );
    let query = sqlx::query(&sql)
        .bind(ts(lease_until))
        .bind(ts(now))
        .bind(sql_limit(limit));
    fetch_all(query, pool, decode_delivery).await
}

pub(crate) async fn finish(
    pool: &PgPool,
    notification_id: &str,
    channel: NotificationChannel,
    attempt: u32,
    outcome: &DeliveryOutcome,
) -> Result<bool, StoreError> {
    let (status, next, error, delivered, at) = match outcome {
        DeliveryOutcome::Delivered { at } => ("delivered", None, None, Some(ts(*at)), at),
        DeliveryOutcome::Retry { at, error } => ("pending", Some(ts(*at)), Some(error), None, at),
        DeliveryOutcome::Failed { at, error } => ("failed", None, Some(error), None, at),
    };
    let query = sqlx::query(
        "UPDATE notification_deliveries
         SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at),
             last_error = COALESCE($3, last_error), delivered_at = COALESCE($4, delivered_at),
             updated_at = $5
         WHERE notification_id = $6 AND channel = $7 AND status = 'sending' AND attempts = $8",
    )
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(delivered)
    .bind(ts(*at))
    .bind(notification_id)
    .bind(channel.as_str())
    .bind(i64::from(attempt));
    Ok(execute(query, pool).await? > 0)
}

pub(crate) async fn of_notification(
    pool: &PgPool,
    notification_id: &str,
) -> Result<Vec<NotificationDelivery>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries
         WHERE notification_id = $1 ORDER BY channel"
    );
    fetch_all(
        sqlx::query(&sql).bind(notification_id),
        pool,
        decode_delivery,
    )
    .await
}

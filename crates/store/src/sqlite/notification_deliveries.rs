//! SQLite: notification subscriptions and the outbound delivery queue.

use chrono::{DateTime, Utc};
use integr8s_core::notification::{NotificationChannel, NotificationDelivery, Subscription};
use integr8s_core::ports::DeliveryOutcome;
use integr8s_core::StoreError;
use sqlx::{SqliteConnection, SqlitePool};

use super::classify;
use super::query::sql_limit;
use super::query::{fetch_all, fetch_one};
use crate::codec::{to_json, ts};
use crate::rows::notification_deliveries::{
    decode_delivery, decode_subscription, DELIVERY_COLUMNS, SUB_COLUMNS,
};

pub(crate) async fn subscriptions(
    pool: &SqlitePool,
    user_id: &str,
) -> Result<Vec<Subscription>, StoreError> {
    let sql = format!(
        "SELECT {SUB_COLUMNS} FROM notification_subscriptions WHERE user_id = ? ORDER BY channel"
    );
    fetch_all(sqlx::query(&sql).bind(user_id), pool, decode_subscription).await
}

pub(crate) async fn save_subscription(
    pool: &SqlitePool,
    s: &Subscription,
) -> Result<Subscription, StoreError> {
    let severities: Vec<&str> = s.severities.iter().map(|v| v.as_str()).collect();
    let sql = format!(
        "INSERT INTO notification_subscriptions ({SUB_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
    conn: &mut SqliteConnection,
    d: &NotificationDelivery,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO notification_deliveries ({DELIVERY_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    sqlx::query(&sql)
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
        .bind(ts(d.updated_at))
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    Ok(())
}

pub(crate) async fn claim(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<NotificationDelivery>, StoreError> {
    // One statement on the single writer connection: no two claimers see the same row.
    let sql = format!(
        "UPDATE notification_deliveries
         SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
         WHERE rowid IN (
            SELECT rowid FROM notification_deliveries
            WHERE status IN ('pending', 'sending') AND next_attempt_at <= ?
            ORDER BY next_attempt_at LIMIT ?)
         RETURNING {DELIVERY_COLUMNS}"
    );
    let query = sqlx::query(&sql)
        .bind(ts(lease_until))
        .bind(ts(now))
        .bind(ts(now))
        .bind(sql_limit(limit));
    fetch_all(query, pool, decode_delivery).await
}

pub(crate) async fn finish(
    pool: &SqlitePool,
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
    let done = sqlx::query(
        "UPDATE notification_deliveries
         SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at),
             last_error = COALESCE(?, last_error), delivered_at = COALESCE(?, delivered_at),
             updated_at = ?
         WHERE notification_id = ? AND channel = ? AND status = 'sending' AND attempts = ?",
    )
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(delivered)
    .bind(ts(*at))
    .bind(notification_id)
    .bind(channel.as_str())
    .bind(i64::from(attempt))
    .execute(pool)
    .await
    .map_err(classify)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn of_notification(
    pool: &SqlitePool,
    notification_id: &str,
) -> Result<Vec<NotificationDelivery>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries
         WHERE notification_id = ? ORDER BY channel"
    );
    fetch_all(
        sqlx::query(&sql).bind(notification_id),
        pool,
        decode_delivery,
    )
    .await
}

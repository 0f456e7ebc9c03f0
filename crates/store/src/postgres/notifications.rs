//! PostgreSQL: notifications (the inbox), with their subscriptions and deliveries in
//! [`super::notification_deliveries`].
//!
//! Creating a notification decides on the user's other rows (an existing dedup key, the
//! throttle's count), so creations take the user's [`Lock::UserNotifications`] advisory lock
//! for their transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::event::Envelope;
use integr8s_core::notification::{
    Notification, NotificationChannel, NotificationDelivery, NotificationFilter, Subscription,
    Throttle,
};
use integr8s_core::ports::{CreateNotification, DeliveryOutcome, NotificationStore};
use integr8s_core::StoreError;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::notification_deliveries as deliveries;
use super::query::{execute, fetch_optional, Page};
use super::{classify, lock, Lock, PostgresStore};
use crate::codec::{to_json, to_u64, ts};
use crate::rows::notifications::{decode, COLUMNS};

async fn by_dedup_key(
    conn: &mut PgConnection,
    user_id: &str,
    key: &str,
) -> Result<Option<Notification>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND dedup_key = $2");
    fetch_optional(sqlx::query(&sql).bind(user_id).bind(key), conn, decode).await
}

async fn throttled(
    conn: &mut PgConnection,
    n: &Notification,
    throttle: Throttle,
) -> Result<bool, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications
         WHERE user_id = $1 AND severity = $2 AND created_at >= $3",
    )
    .bind(&n.user_id)
    .bind(n.severity.as_str())
    .bind(ts(throttle.since))
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(count >= i64::from(throttle.max))
}

async fn insert(conn: &mut PgConnection, n: &Notification) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO notifications ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    let query = sqlx::query(&sql)
        .bind(&n.notification_id)
        .bind(&n.user_id)
        .bind(n.channel.as_str())
        .bind(n.severity.as_str())
        .bind(n.status.as_str())
        .bind(&n.subject)
        .bind(&n.body)
        .bind(&n.action_url)
        .bind(to_json(&n.tags)?)
        .bind(&n.dedup_key)
        .bind(ts(n.created_at))
        .bind(n.read_at.map(ts));
    execute(query, conn).await?;
    Ok(())
}

/// The notification's tags, one row each (`value`).
const TAGS: &str = "jsonb_array_elements_text(notifications.tags::jsonb) AS tag(value)";

fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &NotificationFilter) {
    qb.push(" WHERE user_id = ").push_bind(f.user_id.clone());
    if let Some(status) = f.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if !f.include_tags.is_empty() {
        qb.push(format!(
            " AND EXISTS (SELECT 1 FROM {TAGS} WHERE value = ANY("
        ))
        .push_bind(f.include_tags.clone())
        .push("))");
    }
    if !f.exclude_tags.is_empty() {
        qb.push(format!(
            " AND NOT EXISTS (SELECT 1 FROM {TAGS} WHERE value = ANY("
        ))
        .push_bind(f.exclude_tags.clone())
        .push("))");
    }
    if let Some(prefix) = &f.tag_prefix {
        qb.push(format!(
            " AND EXISTS (SELECT 1 FROM {TAGS} WHERE starts_with(value, "
        ))
        .push_bind(prefix.clone())
        .push("))");
    }
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn create_notification(
        &self,
        notification: &Notification,
        deliveries: &[NotificationDelivery],
        created: &Envelope,
        throttle: Option<Throttle>,
    ) -> Result<CreateNotification, StoreError> {
        let mut tx = self.begin().await?;
        lock(&mut tx, Lock::UserNotifications, &notification.user_id).await?;
        if let Some(key) = &notification.dedup_key {
            if let Some(existing) = by_dedup_key(&mut tx, &notification.user_id, key).await? {
                return Ok(CreateNotification::Existing(existing));
            }
        }
        if let Some(throttle) = throttle {
            if throttled(&mut tx, notification, throttle).await? {
                return Ok(CreateNotification::Throttled);
            }
        }
        insert(&mut tx, notification).await?;
        for d in deliveries {
            deliveries::insert(&mut tx, d).await?;
        }
        let stored = super::events::append(&mut tx, created).await?;
        tx.commit().await.map_err(classify)?;
        Ok(CreateNotification::Created(notification.clone(), stored))
    }

    async fn notification(
        &self,
        notification_id: &str,
    ) -> Result<Option<Notification>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE notification_id = $1");
        fetch_optional(sqlx::query(&sql).bind(notification_id), &self.pool, decode).await
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> Result<(Vec<Notification>, u64), StoreError> {
        let page = Page {
            table: "notifications",
            columns: COLUMNS,
            order_by: "created_at DESC, row_seq DESC",
            limit: filter.limit,
            skip: filter.offset,
        };
        page.fetch(&self.pool, |qb| push_filter(qb, filter), decode)
            .await
    }

    async fn unread_notifications(&self, user_id: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications
             WHERE user_id = $1 AND channel = 'in_app' AND status = 'delivered'",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        to_u64(count, "count")
    }

    async fn mark_notification_read(
        &self,
        user_id: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE notifications
             SET read_at = COALESCE(read_at, $1),
                 status = CASE WHEN status = 'delivered' THEN 'read' ELSE status END
             WHERE user_id = $2 AND notification_id = $3",
        )
        .bind(ts(at))
        .bind(user_id)
        .bind(notification_id);
        Ok(execute(query, &self.pool).await? > 0)
    }

    async fn mark_all_notifications_read(
        &self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let query = sqlx::query(
            "UPDATE notifications
             SET read_at = $1,
                 status = CASE WHEN status = 'delivered' THEN 'read' ELSE status END
             WHERE user_id = $2 AND read_at IS NULL",
        )
        .bind(ts(at))
        .bind(user_id);
        execute(query, &self.pool).await
    }

    async fn delete_notification(
        &self,
        user_id: &str,
        notification_id: &str,
    ) -> Result<bool, StoreError> {
        let query =
            sqlx::query("DELETE FROM notifications WHERE user_id = $1 AND notification_id = $2")
                .bind(user_id)
                .bind(notification_id);
        Ok(execute(query, &self.pool).await? > 0)
    }

    async fn delete_user_notifications(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let query = sqlx::query("DELETE FROM notifications WHERE user_id = $1").bind(user_id);
        let deleted = execute(query, &mut *tx).await?;
        for table in ["notification_deliveries", "notification_subscriptions"] {
            let sql = format!("DELETE FROM {table} WHERE user_id = $1");
            execute(sqlx::query(&sql).bind(user_id), &mut *tx).await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(deleted)
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>, StoreError> {
        deliveries::subscriptions(&self.pool, user_id).await
    }

    async fn save_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Subscription, StoreError> {
        deliveries::save_subscription(&self.pool, subscription).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationDelivery>, StoreError> {
        deliveries::claim(&self.pool, now, lease_until, limit).await
    }

    async fn finish_delivery(
        &self,
        notification_id: &str,
        channel: NotificationChannel,
        attempt: u32,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        deliveries::finish(&self.pool, notification_id, channel, attempt, outcome).await
    }

    async fn reopen_failed_deliveries(
        &self,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let query = sqlx::query(
            "UPDATE notification_deliveries
             SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
             WHERE notification_id = $2 AND status = 'failed'",
        )
        .bind(ts(at))
        .bind(notification_id);
        execute(query, &self.pool).await
    }

    async fn deliveries(
        &self,
        notification_id: &str,
    ) -> Result<Vec<NotificationDelivery>, StoreError> {
        deliveries::of_notification(&self.pool, notification_id).await
    }
}

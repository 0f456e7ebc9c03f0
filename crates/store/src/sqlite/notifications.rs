//! SQLite: notifications (the inbox), with their subscriptions and deliveries in
//! [`super::notification_deliveries`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::event::Envelope;
use integr8s_core::notification::{
    Notification, NotificationChannel, NotificationDelivery, NotificationFilter, Subscription,
    Throttle,
};
use integr8s_core::ports::{CreateNotification, DeliveryOutcome, NotificationStore};
use integr8s_core::StoreError;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::notification_deliveries as deliveries;
use super::query::{fetch_optional, Page};
use super::{classify, SqliteStore};
use crate::codec::{to_json, to_u64, ts};
use crate::rows::notifications::{decode, COLUMNS};

async fn by_dedup_key(
    conn: &mut SqliteConnection,
    user_id: &str,
    key: &str,
) -> Result<Option<Notification>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE user_id = ? AND dedup_key = ?");
    fetch_optional(sqlx::query(&sql).bind(user_id).bind(key), conn, decode).await
}

async fn throttled(
    conn: &mut SqliteConnection,
    n: &Notification,
    throttle: Throttle,
) -> Result<bool, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications
         WHERE user_id = ? AND severity = ? AND created_at >= ?",
    )
    .bind(&n.user_id)
    .bind(n.severity.as_str())
    .bind(ts(throttle.since))
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(count >= i64::from(throttle.max))
}

async fn insert(conn: &mut SqliteConnection, n: &Notification) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO notifications ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    sqlx::query(&sql)
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
        .bind(n.read_at.map(ts))
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    Ok(())
}

fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, f: &NotificationFilter) {
    qb.push(" WHERE user_id = ").push_bind(f.user_id.clone());
    if let Some(status) = f.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if !f.include_tags.is_empty() {
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(notifications.tags) WHERE value IN (");
        let mut sep = qb.separated(", ");
        for tag in &f.include_tags {
            sep.push_bind(tag.clone());
        }
        qb.push("))");
    }
    if !f.exclude_tags.is_empty() {
        qb.push(" AND NOT EXISTS (SELECT 1 FROM json_each(notifications.tags) WHERE value IN (");
        let mut sep = qb.separated(", ");
        for tag in &f.exclude_tags {
            sep.push_bind(tag.clone());
        }
        qb.push("))");
    }
    if let Some(prefix) = &f.tag_prefix {
        // substr comparison: no LIKE wildcards to escape.
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(notifications.tags) WHERE substr(value, 1, ")
            .push_bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
            .push(") = ")
            .push_bind(prefix.clone())
            .push(")");
    }
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn create_notification(
        &self,
        notification: &Notification,
        deliveries: &[NotificationDelivery],
        created: &Envelope,
        throttle: Option<Throttle>,
    ) -> Result<CreateNotification, StoreError> {
        let mut tx = self.begin_write().await?;
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
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE notification_id = ?");
        fetch_optional(
            sqlx::query(&sql).bind(notification_id),
            &self.reader,
            decode,
        )
        .await
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> Result<(Vec<Notification>, u64), StoreError> {
        let page = Page {
            table: "notifications",
            columns: COLUMNS,
            order_by: "created_at DESC, rowid DESC",
            limit: filter.limit,
            skip: filter.offset,
        };
        page.fetch(&self.reader, |qb| push_filter(qb, filter), decode)
            .await
    }

    async fn unread_notifications(&self, user_id: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications
             WHERE user_id = ? AND channel = 'in_app' AND status = 'delivered'",
        )
        .bind(user_id)
        .fetch_one(&self.reader)
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
        let found: Option<String> = sqlx::query_scalar(
            "UPDATE notifications
             SET read_at = COALESCE(read_at, ?),
                 status = CASE WHEN status = 'delivered' THEN 'read' ELSE status END
             WHERE user_id = ? AND notification_id = ?
             RETURNING notification_id",
        )
        .bind(ts(at))
        .bind(user_id)
        .bind(notification_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(classify)?;
        Ok(found.is_some())
    }

    async fn mark_all_notifications_read(
        &self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE notifications
             SET read_at = ?,
                 status = CASE WHEN status = 'delivered' THEN 'read' ELSE status END
             WHERE user_id = ? AND read_at IS NULL",
        )
        .bind(ts(at))
        .bind(user_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn delete_notification(
        &self,
        user_id: &str,
        notification_id: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM notifications WHERE user_id = ? AND notification_id = ?")
                .bind(user_id)
                .bind(notification_id)
                .execute(&self.writer)
                .await
                .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_notifications(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM notifications WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        for table in ["notification_deliveries", "notification_subscriptions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = ?"))
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>, StoreError> {
        deliveries::subscriptions(&self.reader, user_id).await
    }

    async fn save_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Subscription, StoreError> {
        deliveries::save_subscription(&self.writer, subscription).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationDelivery>, StoreError> {
        deliveries::claim(&self.writer, now, lease_until, limit).await
    }

    async fn finish_delivery(
        &self,
        notification_id: &str,
        channel: NotificationChannel,
        attempt: u32,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        deliveries::finish(&self.writer, notification_id, channel, attempt, outcome).await
    }

    async fn reopen_failed_deliveries(
        &self,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE notification_deliveries
             SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?
             WHERE notification_id = ? AND status = 'failed'",
        )
        .bind(ts(at))
        .bind(ts(at))
        .bind(notification_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn deliveries(
        &self,
        notification_id: &str,
    ) -> Result<Vec<NotificationDelivery>, StoreError> {
        deliveries::of_notification(&self.reader, notification_id).await
    }
}

//! User accounts: unique usernames and emails, lookup and the seeding upsert.

use super::*;

pub async fn user_create_conflict_and_lookup(store: S) {
    let alice = store.create_user(&new_user("alice")).await.unwrap();
    assert_eq!(alice.username, "alice");
    assert!(alice.is_active);
    assert_eq!(alice.role, Role::User);

    let mut dup_name = new_user("alice");
    dup_name.email = "other@example.com".to_owned();
    match store.create_user(&dup_name).await {
        Err(StoreError::Conflict(field)) => assert_eq!(field, "username"),
        other => panic!("expected a username conflict, got {other:?}"),
    }
    let mut dup_email = new_user("bob");
    dup_email.email = alice.email.clone();
    match store.create_user(&dup_email).await {
        Err(StoreError::Conflict(field)) => assert_eq!(field, "email"),
        other => panic!("expected an email conflict, got {other:?}"),
    }

    assert_eq!(
        store.user_by_id(&alice.user_id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_username("alice").await.unwrap(), Some(alice));
    assert_eq!(store.user_by_username("nobody").await.unwrap(), None);
    assert_eq!(store.user_by_id("missing").await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn user_upsert_resets_existing_user(store: S) {
    let first = store.upsert_user(&new_user("admin")).await.unwrap();
    let mut again = new_user("admin");
    again.email = "root@example.com".to_owned();
    again.password_hash = "new-hash".to_owned();
    again.role = Role::Admin;
    again.is_superuser = true;
    let second = store.upsert_user(&again).await.unwrap();
    assert_eq!(
        second.user_id, first.user_id,
        "upsert keeps the existing id"
    );
    assert_eq!(second.email, "root@example.com");
    assert_eq!(second.password_hash, "new-hash");
    assert_eq!(second.role, Role::Admin);
    assert!(second.is_superuser && second.is_active);
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(store.user_by_username("admin").await.unwrap(), Some(second));
}

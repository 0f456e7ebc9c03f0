//! Saved scripts: owner-scoped create, read, list, update and delete.

use super::*;
use crate::ports::SavedScript;

pub(super) fn saved(user_id: &str, name: &str) -> SavedScript {
    let now = crate::now();
    SavedScript {
        script_id: crate::new_id(),
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        script: "print('saved')".to_owned(),
        lang: "python".to_owned(),
        lang_version: "3.11".to_owned(),
        description: Some("a script".to_owned()),
        created_at: now,
        updated_at: now,
    }
}

pub async fn scripts_are_private_to_their_owner(store: S) {
    let mine = saved("u1", "mine");
    store.create_script(&mine).await.unwrap();
    let theirs = saved("u2", "theirs");
    store.create_script(&theirs).await.unwrap();

    let got = store.script(&mine.script_id, "u1").await.unwrap();
    assert_eq!(got.as_ref().map(|s| s.name.as_str()), Some("mine"));
    assert_eq!(got.unwrap().description.as_deref(), Some("a script"));
    assert_eq!(store.script(&mine.script_id, "u2").await.unwrap(), None);
    assert_eq!(store.script("missing", "u1").await.unwrap(), None);

    let listed = store.list_scripts("u1").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].script_id, mine.script_id);
    assert!(store.list_scripts("nobody").await.unwrap().is_empty());
    assert_eq!(store.count_scripts("nobody").await.unwrap(), 0);
    assert_eq!(store.count_scripts("u1").await.unwrap(), 1);
    for name in ["second", "third"] {
        store.create_script(&saved("u1", name)).await.unwrap();
    }
    let listed = store.list_scripts("u1").await.unwrap();
    assert_eq!(store.count_scripts("u1").await.unwrap(), 3);
    let mut paged = store.list_scripts_page("u1", 1, 0).await.unwrap();
    paged.extend(store.list_scripts_page("u1", 1, 1).await.unwrap());
    paged.extend(store.list_scripts_page("u1", 100, 2).await.unwrap());
    assert_eq!(paged, listed, "pages follow the listing order");
    assert!(store
        .list_scripts_page("u1", 10, 100)
        .await
        .unwrap()
        .is_empty());

    match store.create_script(&mine).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a conflict for a taken id, got {other:?}"),
    }
}

pub async fn scripts_update_and_delete_by_owner_only(store: S) {
    let mut script = saved("u1", "first");
    store.create_script(&script).await.unwrap();
    let older = saved("u1", "older");
    let mut older = SavedScript {
        updated_at: script.updated_at - Duration::seconds(60),
        ..older
    };
    older.created_at = older.updated_at;
    store.create_script(&older).await.unwrap();

    script.name = "renamed".to_owned();
    script.script = "print(2)".to_owned();
    script.description = None;
    script.updated_at = crate::now() + Duration::seconds(1);
    assert!(store.update_script(&script).await.unwrap());
    let got = store
        .script(&script.script_id, "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.name, "renamed");
    assert_eq!(got.script, "print(2)");
    assert_eq!(got.description, None);
    assert_eq!(got.created_at, script.created_at);

    let names: Vec<_> = store
        .list_scripts("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["renamed", "older"], "most recently updated first");

    let stolen = SavedScript {
        user_id: "u2".to_owned(),
        name: "stolen".to_owned(),
        ..script.clone()
    };
    assert!(!store.update_script(&stolen).await.unwrap());
    assert!(!store.delete_script(&script.script_id, "u2").await.unwrap());
    assert_eq!(
        store
            .script(&script.script_id, "u1")
            .await
            .unwrap()
            .unwrap()
            .name,
        "renamed"
    );

    assert!(store.delete_script(&script.script_id, "u1").await.unwrap());
    assert!(!store.delete_script(&script.script_id, "u1").await.unwrap());
    assert_eq!(store.script(&script.script_id, "u1").await.unwrap(), None);
    assert!(!store.update_script(&script).await.unwrap());
}

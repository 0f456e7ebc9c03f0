//! The default accounts `admin` and `user`, and the rule that keeps their default passwords
//! off the network.

use anyhow::{bail, Context};
use integr8s_core::ports::{NewUser, Store};
use integr8s_core::user::Role;

use crate::config::Config;

pub const DEFAULT_ADMIN_PASSWORD: &str = "admin123";
pub const DEFAULT_USER_PASSWORD: &str = "user123";
/// The domain of the default accounts' addresses: a normal domain (reserved for examples), so
/// clients that validate addresses accept them, unlike special-use names such as `.local`.
pub const SEED_EMAIL_DOMAIN: &str = "example.com";

fn seed_users(config: &Config) -> anyhow::Result<Vec<NewUser>> {
    let make = |name: &str, password: &str, role: Role| -> anyhow::Result<NewUser> {
        Ok(NewUser {
            user_id: integr8s_core::new_id(),
            username: name.to_owned(),
            email: format!("{name}@{SEED_EMAIL_DOMAIN}"),
            password_hash: integr8s_api::hash_password(password)
                .map_err(|e| anyhow::anyhow!("hashing the {name} password: {e}"))?,
            role,
            is_superuser: role == Role::Admin,
        })
    };
    Ok(vec![
        make("admin", &config.auth.admin_password, Role::Admin)?,
        make("user", &config.auth.user_password, Role::User)?,
    ])
}

/// Refuses to expose the default passwords on a non-loopback address.
pub fn check_exposure(config: &Config) -> anyhow::Result<()> {
    if config.binds_loopback() || !config.auth.seed_users {
        return Ok(());
    }
    let defaults = [
        (
            "auth.admin_password",
            &config.auth.admin_password,
            DEFAULT_ADMIN_PASSWORD,
        ),
        (
            "auth.user_password",
            &config.auth.user_password,
            DEFAULT_USER_PASSWORD,
        ),
    ];
    for (key, value, default) in defaults {
        if value == default {
            bail!(
                "refusing to start on {} with the default password of a seeded account: set {key} \
                 (env INTEGR8S_{}) to a new password, or set auth.seed_users = false \
                 (env INTEGR8S_AUTH__SEED_USERS=false), or bind to 127.0.0.1",
                config.server.host,
                key.replace('.', "__").to_ascii_uppercase()
            );
        }
    }
    Ok(())
}

/// Off loopback, also refuses when a seeded account in the database still has its default
/// password (e.g. the server ran on loopback first and is now exposed).
pub async fn check_stored_defaults(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    if config.binds_loopback() {
        return Ok(());
    }
    for (name, default) in [
        ("admin", DEFAULT_ADMIN_PASSWORD),
        ("user", DEFAULT_USER_PASSWORD),
    ] {
        let Some(user) = store
            .user_by_username(name)
            .await
            .context("reading seeded accounts")?
        else {
            continue;
        };
        if user.is_active
            && integr8s_api::auth::password::verify_password(default, &user.password_hash)
        {
            bail!(
                "refusing to start on {}: the account '{name}' still has its default password; \
                 change it (log in and update it, or run `integr8s seed-users` with \
                 auth.{name}_password set) or bind to 127.0.0.1",
                config.server.host
            );
        }
    }
    Ok(())
}

/// Creates the default accounts when the database has no users (first start).
pub async fn seed_if_empty(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    if !config.auth.seed_users || store.count_users().await.context("counting users")? > 0 {
        return Ok(());
    }
    for user in seed_users(config)? {
        if let Err(e) = store.create_user(&user).await {
            // Several API processes may start on an empty database at once: one of them wins.
            let taken = store
                .user_by_username(&user.username)
                .await
                .context("reading seeded accounts")?
                .is_some();
            if taken {
                continue;
            }
            return Err(e).with_context(|| format!("seeding {}", user.username));
        }
        tracing::info!(username = %user.username, "seeded default account");
    }
    Ok(())
}

/// (Re)applies the configured passwords and roles of the default accounts.
pub async fn seed_force(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    for user in seed_users(config)? {
        store
            .upsert_user(&user)
            .await
            .with_context(|| format!("seeding {}", user.username))?;
        println!("account '{}' ({}) set", user.username, user.role.as_str());
    }
    Ok(())
}

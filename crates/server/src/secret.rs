//! The JWT/CSRF signing secret: from configuration, or generated once and kept in the data dir.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};

const SECRET_FILE: &str = "secret.key";

/// Returns the configured secret, or the one kept in `<data_dir>/secret.key`, creating it
/// (64 random bytes, hex, mode 0600) when absent.
pub fn load_or_create(configured: &str, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    if path.exists() {
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let secret = text.trim();
        if secret.len() < 32 {
            bail!(
                "{} holds a secret shorter than 32 characters; delete it to generate a new one",
                path.display()
            );
        }
        return Ok(secret.as_bytes().to_vec());
    }
    let mut bytes = [0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(hex.as_bytes())?;
    Ok(hex.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_with_private_mode_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create("", dir.path()).unwrap();
        let b = load_or_create("", dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 128);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn configured_secret_wins_and_world_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = "x".repeat(40);
        assert_eq!(load_or_create(&s, dir.path()).unwrap(), s.as_bytes());
        let path = dir.path().join(SECRET_FILE);
        std::fs::write(&path, "y".repeat(64)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create("", dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}

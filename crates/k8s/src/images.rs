//! The runtime image registry: which image and command run each language version in a pod.

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

/// The registry shipped with the binary (official language images).
pub const EMBEDDED_IMAGES: &str = include_str!("../runtime-images.toml");

/// Where the script is written inside an executor container (the writable work dir).
pub const WORK_DIR: &str = "/work";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    runtime: Vec<ImageRuntime>,
}

/// One language of the registry file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRuntime {
    pub lang: String,
    pub file_ext: String,
    /// argv inside the container; `{file}` is the script's path, `{version}` the version.
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// version → image.
    pub images: BTreeMap<String, String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("invalid runtime image registry: {0}")]
    Invalid(String),
    #[error("no image for language '{lang}' in the runtime image registry; languages: {known}")]
    UnknownLanguage { lang: String, known: String },
    #[error("no image for {lang} {version} in the runtime image registry; versions: {known}")]
    UnknownVersion {
        lang: String,
        version: String,
        known: String,
    },
}

/// What runs one execution in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRuntime {
    pub lang: String,
    pub version: String,
    pub image: String,
    /// The script's file name (`main.<ext>`), its key in the ConfigMap.
    pub file_name: String,
    /// argv of the runtime, run by the entrypoint from the work dir.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Language versions → images and commands.
#[derive(Debug, Clone)]
pub struct ImageRegistry {
    runtimes: Vec<ImageRuntime>,
}

impl ImageRegistry {
    pub fn embedded() -> Self {
        // Parsed by a unit test; a failure here is a build defect.
        Self::from_toml(EMBEDDED_IMAGES).unwrap_or_else(|e| panic!("embedded image registry: {e}"))
    }

    pub fn from_toml(text: &str) -> Result<Self, ImageError> {
        let file: ImageFile =
            toml::from_str(text).map_err(|e| ImageError::Invalid(e.to_string()))?;
        for r in &file.runtime {
            if r.images.is_empty() {
                return Err(ImageError::Invalid(format!("'{}' has no images", r.lang)));
            }
            if !r.command.iter().any(|a| a.contains("{file}")) {
                return Err(ImageError::Invalid(format!(
                    "'{}': command must contain {{file}}",
                    r.lang
                )));
            }
            if r.file_ext.is_empty() || !r.file_ext.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ImageError::Invalid(format!(
                    "'{}': file_ext must be letters and digits",
                    r.lang
                )));
            }
        }
        Ok(Self {
            runtimes: file.runtime,
        })
    }

    pub fn runtimes(&self) -> &[ImageRuntime] {
        &self.runtimes
    }

    pub fn resolve(&self, lang: &str, version: &str) -> Result<ContainerRuntime, ImageError> {
        let runtime = self
            .runtimes
            .iter()
            .find(|r| r.lang == lang)
            .ok_or_else(|| ImageError::UnknownLanguage {
                lang: lang.to_owned(),
                known: join(self.runtimes.iter().map(|r| r.lang.as_str())),
            })?;
        let image = runtime
            .images
            .get(version)
            .ok_or_else(|| ImageError::UnknownVersion {
                lang: lang.to_owned(),
                version: version.to_owned(),
                known: join(runtime.images.keys().map(String::as_str)),
            })?;
        let file_name = format!("main.{}", runtime.file_ext);
        let file_path = format!("{WORK_DIR}/{file_name}");
        Ok(ContainerRuntime {
            lang: lang.to_owned(),
            version: version.to_owned(),
            image: image.clone(),
            command: runtime
                .command
                .iter()
                .map(|a| {
                    a.replace("{file}", &file_path)
                        .replace("{version}", version)
                })
                .collect(),
            env: runtime
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            file_name,
        })
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_registry_uses_official_images() {
        let registry = ImageRegistry::embedded();
        let python = registry.resolve("python", "3.11").unwrap();
        assert_eq!(python.image, "python:3.11-slim");
        assert_eq!(python.command, ["python3.11", "-I", "/work/main.py"]);
        assert_eq!(python.file_name, "main.py");
        for lang in ["python", "node", "ruby", "bash", "go"] {
            assert!(registry.runtimes().iter().any(|r| r.lang == lang), "{lang}");
        }
    }

    #[test]
    fn unknown_runtimes_are_named() {
        let registry = ImageRegistry::embedded();
        let err = registry.resolve("cobol", "1").unwrap_err().to_string();
        assert!(err.contains("cobol") && err.contains("python"), "{err}");
        let err = registry.resolve("python", "2.7").unwrap_err().to_string();
        assert!(err.contains("3.11"), "{err}");
        assert!(ImageRegistry::from_toml(
            "[[runtime]]\nlang='x'\nfile_ext='x'\ncommand=['x']\nimages={a='b'}"
        )
        .is_err());
    }
}

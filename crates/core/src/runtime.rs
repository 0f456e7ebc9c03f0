//! The runtime registry: which languages and versions exist, how to run them in the local
//! sandbox and in a container, and which are installed on this host.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

/// The registry shipped with the binary.
pub const EMBEDDED_REGISTRY: &str = include_str!("../runtimes.toml");

/// Directory inside the sandbox where the script is written.
pub const SCRIPT_DIR: &str = "/work";

#[derive(Debug, Clone, Deserialize)]
struct RegistryFile {
    runtime: Vec<RuntimeDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeDef {
    pub lang: String,
    pub file_ext: String,
    pub image: String,
    pub command: Vec<String>,
    pub package: String,
    pub probe: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How to start this language's interpreter before its script exists (see [`PrestartDef`]).
    #[serde(default)]
    pub prestart: Option<PrestartDef>,
    pub versions: Vec<VersionDef>,
}

/// An interpreter started ahead of its run: inside the run's isolation, before the script is
/// known, so the interpreter's own start-up leaves the run's critical path. The contract with
/// the sandbox: the process starts with `/dev/null` as its standard streams and a
/// `SOCK_SEQPACKET` unix socket as descriptor 3; once the script is at `{file}` it receives
/// one message, the byte `g` with three descriptors (the run's stdin, stdout and stderr). It
/// must make them its descriptors 0, 1 and 2, close 3, and then behave exactly as `command`
/// would; without such a message it exits. One such process serves exactly one run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrestartDef {
    /// argv inside the sandbox; `{interpreter}` and `{file}` as in `command`, `{code}` is
    /// replaced by `code`.
    pub command: Vec<String>,
    /// The program that waits for the run (language specific).
    #[serde(default)]
    pub code: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDef {
    pub version: String,
    pub host_path: String,
    /// Filled by [`RuntimeRegistry::probe_host`]; not part of the file.
    #[serde(skip)]
    pub available: bool,
}

#[derive(Debug, Error, PartialEq)]
pub enum RuntimeError {
    #[error("invalid runtime registry: {0}")]
    Invalid(String),
    #[error("unsupported language '{lang}'; supported: {supported}")]
    UnknownLanguage { lang: String, supported: String },
    #[error("unsupported version '{version}' of {lang}; supported: {supported}")]
    UnknownVersion {
        lang: String,
        version: String,
        supported: String,
    },
    #[error("{lang} {version} is not installed on this server ({path} not found or reports another version); install the '{package}' package (apt-get install {package})")]
    NotInstalled {
        lang: String,
        version: String,
        path: String,
        package: String,
    },
}

/// A runtime chosen for one execution, with its command ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRuntime {
    pub lang: String,
    pub version: String,
    pub file_name: String,
    pub image: String,
    /// argv inside the local sandbox.
    pub command: Vec<String>,
    /// argv inside a container (interpreter name instead of host path).
    pub container_command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub host_path: String,
    /// argv inside the local sandbox of an interpreter started ahead of the run (see
    /// [`PrestartDef`]); `None` for languages without one.
    pub prestart: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct RuntimeRegistry {
    runtimes: Vec<RuntimeDef>,
}

impl RuntimeRegistry {
    pub fn embedded() -> Self {
        // The embedded file is tested below; a failure here is a build defect.
        Self::from_toml(EMBEDDED_REGISTRY).unwrap_or_else(|e| panic!("embedded registry: {e}"))
    }

    pub fn from_toml(text: &str) -> Result<Self, RuntimeError> {
        let file: RegistryFile =
            toml::from_str(text).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        for r in &file.runtime {
            if r.versions.is_empty() {
                return Err(RuntimeError::Invalid(format!(
                    "runtime '{}' has no versions",
                    r.lang
                )));
            }
            if let Some(prestart) = &r.prestart {
                if !prestart.command.iter().any(|a| a.contains("{file}")) {
                    return Err(RuntimeError::Invalid(format!(
                        "runtime '{}': prestart command must contain {{file}}",
                        r.lang
                    )));
                }
            }
            if !r.command.iter().any(|a| a.contains("{file}")) {
                return Err(RuntimeError::Invalid(format!(
                    "runtime '{}': command must contain {{file}}",
                    r.lang
                )));
            }
        }
        Ok(Self {
            runtimes: file.runtime,
        })
    }

    /// Marks each version available when its interpreter exists and reports that version.
    pub fn probe_host(&mut self) {
        for r in &mut self.runtimes {
            for v in &mut r.versions {
                v.available = probe_version(&v.host_path, &r.probe, &v.version);
            }
        }
    }

    /// Marks every version available without probing (for tests of code above the sandbox).
    pub fn assume_all_available(&mut self) {
        for r in &mut self.runtimes {
            for v in &mut r.versions {
                v.available = true;
            }
        }
    }

    /// This registry's definitions with the availability that workers reported: a version is
    /// available when at least one report lists it.
    pub fn with_reported<'a>(
        &self,
        reports: impl IntoIterator<Item = &'a crate::ports::RuntimeReport> + Clone,
    ) -> Self {
        let mut registry = self.clone();
        for r in &mut registry.runtimes {
            for v in &mut r.versions {
                v.available = reports
                    .clone()
                    .into_iter()
                    .any(|report| report.lang == r.lang && report.versions.contains(&v.version));
            }
        }
        registry
    }

    pub fn runtimes(&self) -> &[RuntimeDef] {
        &self.runtimes
    }

    /// Resolves a (language, version) for execution, or says precisely why not.
    pub fn resolve(&self, lang: &str, version: &str) -> Result<ResolvedRuntime, RuntimeError> {
        let r = self
            .runtimes
            .iter()
            .find(|r| r.lang == lang)
            .ok_or_else(|| RuntimeError::UnknownLanguage {
                lang: lang.to_owned(),
                supported: self
                    .runtimes
                    .iter()
                    .map(|r| r.lang.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let v = r
            .versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| RuntimeError::UnknownVersion {
                lang: lang.to_owned(),
                version: version.to_owned(),
                supported: r
                    .versions
                    .iter()
                    .map(|v| v.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if !v.available {
            return Err(RuntimeError::NotInstalled {
                lang: lang.to_owned(),
                version: version.to_owned(),
                path: v.host_path.clone(),
                package: r.package.clone(),
            });
        }
        let file_name = format!("main.{}", r.file_ext);
        let file_path = format!("{SCRIPT_DIR}/{file_name}");
        let interpreter_name = Path::new(&v.host_path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| v.host_path.clone());
        let subst = |interp: &str| -> Vec<String> {
            r.command
                .iter()
                .map(|a| {
                    a.replace("{interpreter}", interp)
                        .replace("{file}", &file_path)
                })
                .collect()
        };
        let prestart = r.prestart.as_ref().map(|p| {
            p.command
                .iter()
                .map(|a| {
                    a.replace("{interpreter}", &v.host_path)
                        .replace("{file}", &file_path)
                        .replace("{code}", &p.code)
                })
                .collect()
        });
        Ok(ResolvedRuntime {
            prestart,
            lang: r.lang.clone(),
            version: v.version.clone(),
            image: r.image.replace("{version}", &v.version),
            command: subst(&v.host_path),
            container_command: subst(&interpreter_name),
            env: r.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            host_path: v.host_path.clone(),
            file_name,
        })
    }
}

/// Runs `path probe…` and checks that the first dotted version number it prints is `version`
/// or starts with `version.`.
fn probe_version(path: &str, probe: &[String], version: &str) -> bool {
    if !Path::new(path).exists() {
        return false;
    }
    let Ok(out) = std::process::Command::new(path).args(probe).output() else {
        return false;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    reported_version_matches(&text, version)
}

fn reported_version_matches(text: &str, version: &str) -> bool {
    let found = text.split_whitespace().find_map(|word| {
        let start = word.find(|c: char| c.is_ascii_digit())?;
        let num: String = word[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        num.contains('.').then_some(num)
    });
    match found {
        Some(n) => n == version || n.starts_with(&format!("{version}.")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_registry_parses_with_the_original_languages() {
        let reg = RuntimeRegistry::embedded();
        let langs: Vec<_> = reg.runtimes().iter().map(|r| r.lang.as_str()).collect();
        for l in ["python", "node", "ruby", "bash", "go"] {
            assert!(langs.contains(&l), "{l} missing");
        }
    }

    #[test]
    fn version_reports_are_matched_exactly() {
        assert!(reported_version_matches("Python 3.11.2", "3.11"));
        assert!(!reported_version_matches("Python 3.11.2", "3.1"));
        assert!(reported_version_matches("v20.20.2", "20"));
        assert!(!reported_version_matches("v18.20.2", "20"));
        assert!(reported_version_matches(
            "go version go1.19.8 linux/amd64",
            "1.19"
        ));
        assert!(reported_version_matches("ruby 3.1.2p20 (2022-04-12", "3.1"));
        assert!(reported_version_matches(
            "GNU bash, version 5.2.15(1)-release",
            "5.2"
        ));
    }

    #[test]
    fn reported_versions_are_the_available_ones() {
        let mut probed = RuntimeRegistry::embedded();
        probed.assume_all_available();
        let reports = [crate::ports::RuntimeReport {
            lang: "python".to_owned(),
            versions: vec!["3.11".to_owned()],
        }];
        let reg = probed.with_reported(&reports);
        assert!(reg.resolve("python", "3.11").is_ok());
        assert!(matches!(
            reg.resolve("python", "3.12"),
            Err(RuntimeError::NotInstalled { .. })
        ));
        assert!(matches!(
            reg.resolve("go", "1.19"),
            Err(RuntimeError::NotInstalled { .. })
        ));
    }

    #[test]
    fn resolve_explains_each_failure() {
        let mut reg = RuntimeRegistry::embedded();
        assert!(matches!(
            reg.resolve("cobol", "1"),
            Err(RuntimeError::UnknownLanguage { .. })
        ));
        assert!(matches!(
            reg.resolve("python", "2.7"),
            Err(RuntimeError::UnknownVersion { .. })
        ));
        let err = reg.resolve("python", "3.11").unwrap_err();
        assert!(err.to_string().contains("apt-get install python3"), "{err}");
        reg.assume_all_available();
        let r = reg.resolve("python", "3.11").unwrap();
        assert_eq!(r.command, ["/usr/bin/python3.11", "-I", "/work/main.py"]);
        assert_eq!(r.container_command[0], "python3.11");
        assert_eq!(r.image, "python:3.11-slim");
    }
}

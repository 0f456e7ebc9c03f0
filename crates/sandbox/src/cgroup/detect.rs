//! Finds the cgroup hierarchies we may create run cgroups in (v1 per controller, or v2).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where run cgroups are created, decided once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupLayout {
    /// cgroup v1: one parent directory per controller hierarchy.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpuacct: Option<PathBuf>,
        /// The `cpu` hierarchy, for `cpu.shares` (a CPU weight per run).
        cpu: Option<PathBuf>,
    },
    /// cgroup v2: one parent directory with memory and pids (and cpu, when delegated)
    /// enabled for its children.
    V2 { parent: PathBuf, cpu: bool },
}

/// One line of `/proc/self/cgroup`: hierarchy id, controllers, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MembershipLine {
    pub controllers: Vec<String>,
    pub path: String,
}

/// One cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    pub root: String,
    pub mount_point: PathBuf,
    pub v2: bool,
    pub controllers: Vec<String>,
}

pub(crate) fn parse_membership(text: &str) -> Vec<MembershipLine> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(MembershipLine {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

pub(crate) fn parse_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let fstype = *right.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let options = right.get(2).copied().unwrap_or("");
            Some(CgroupMount {
                root: (*left.get(3)?).to_owned(),
                mount_point: PathBuf::from(*left.get(4)?),
                v2: fstype == "cgroup2",
                controllers: options
                    .split(',')
                    .filter(|o| matches!(*o, "memory" | "pids" | "cpuacct" | "cpu"))
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// Directory of cgroup `path` in a hierarchy mounted with `root` at `mount_point`.
pub(crate) fn dir_in_mount(mount: &CgroupMount, path: &str) -> PathBuf {
    let relative = if mount.root == "/" {
        path
    } else {
        path.strip_prefix(mount.root.as_str()).unwrap_or(path)
    };
    mount.mount_point.join(relative.trim_start_matches('/'))
}

/// Our own cgroup directory of the v1 hierarchy that carries `controller`.
fn v1_own_dir(
    membership: &[MembershipLine],
    mounts: &[CgroupMount],
    controller: &str,
) -> Option<PathBuf> {
    let line = membership
        .iter()
        .find(|l| l.controllers.iter().any(|c| c == controller))?;
    let mount = mounts
        .iter()
        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))?;
    Some(dir_in_mount(mount, &line.path))
}

/// Our own cgroup directory in the unified (v2) hierarchy.
fn v2_own_dir(membership: &[MembershipLine], mounts: &[CgroupMount]) -> Option<PathBuf> {
    let line = membership.iter().find(|l| l.controllers.is_empty())?;
    let mount = mounts.iter().find(|m| m.v2)?;
    Some(dir_in_mount(mount, &line.path))
}

fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|t| t.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Creates a cgroup directory; the kernel fills it with its interface files. Injectable so
/// the file logic can be tested on a plain directory tree.
pub(crate) type Mkdir = fn(&Path) -> io::Result<()>;

/// The real `mkdir(2)`.
pub(crate) fn real_mkdir(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)
}

fn ensure_dir(mkdir: Mkdir, dir: &Path) -> io::Result<()> {
    match mkdir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Name of the sub-cgroup holding every run cgroup of this service.
pub(crate) const SUBTREE: &str = "integr8s-sandbox";

/// cgroup v2: the leaf our own processes move to so controllers can be enabled for children
/// of our cgroup (the "no internal processes" rule).
pub(crate) const LEAF: &str = "supervisor";

/// Why no cgroup layout is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetectFailure {
    /// Our cgroup v2 directory (or the configured parent), the one to delegate to.
    pub v2_dir: Option<PathBuf>,
    /// Both reasons, phrased for the health detail.
    pub cause: String,
}

/// Detects a usable layout and creates its parent directories.
pub(crate) fn detect(parent_override: Option<&Path>) -> Result<CgroupLayout, DetectFailure> {
    let read = |path: &str| {
        fs::read_to_string(path).map_err(|e| DetectFailure {
            v2_dir: None,
            cause: format!("read {path}: {e}"),
        })
    };
    let membership = read("/proc/self/cgroup")?;
    let mounts = read("/proc/self/mountinfo")?;
    detect_with(&membership, &mounts, parent_override, real_mkdir)
}

/// [`detect`] from the text of `/proc/self/cgroup` and `/proc/self/mountinfo`: the mount
/// points there decide where the hierarchies are looked for.
pub(crate) fn detect_with(
    proc_cgroup: &str,
    mountinfo: &str,
    parent_override: Option<&Path>,
    mkdir: Mkdir,
) -> Result<CgroupLayout, DetectFailure> {
    let membership = parse_membership(proc_cgroup);
    let mounts = parse_mounts(mountinfo);
    let v2_dir = match parent_override {
        Some(p) => Some(p.to_path_buf()),
        None => v2_own_dir(&membership, &mounts),
    };
    let v2_problem = match &v2_dir {
        Some(own) => match detect_v2(own, mkdir) {
            Ok(layout) => return Ok(layout),
            Err(problem) => problem,
        },
        None => "no cgroup v2 hierarchy is mounted".to_owned(),
    };
    match detect_v1(&membership, &mounts, parent_override, mkdir) {
        Ok(layout) => Ok(layout),
        Err(v1_problem) => Err(DetectFailure {
            v2_dir,
            cause: format!("{v2_problem}; {v1_problem}"),
        }),
    }
}

/// Enables `wanted` for the children of `own`. A non-root cgroup with processes cannot have
/// controllers enabled for its children, so they are moved into the leaf [`LEAF`] first.
fn enable_controllers(own: &Path, wanted: &[&str], mkdir: Mkdir) -> Result<(), String> {
    let enabled = read_words(&own.join("cgroup.subtree_control"));
    if wanted.iter().all(|w| enabled.iter().any(|e| e == w)) {
        return Ok(());
    }
    // Only non-root cgroups have cgroup.type; the root is exempt from the rule.
    let procs = fs::read_to_string(own.join("cgroup.procs")).unwrap_or_default();
    let pids: Vec<&str> = procs.split_whitespace().collect();
    if own.join("cgroup.type").exists() && !pids.is_empty() {
        let leaf = own.join(LEAF);
        ensure_dir(mkdir, &leaf).map_err(|e| format!("create {}: {e}", leaf.display()))?;
        let mut leaf_procs = fs::OpenOptions::new()
            .write(true)
            .open(leaf.join("cgroup.procs"))
            .map_err(|e| format!("open {}/cgroup.procs: {e}", leaf.display()))?;
        for pid in pids {
            match leaf_procs.write_all(format!("{pid}\n").as_bytes()) {
                // The process exited meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(format!("move pid {pid} to {}: {e}", leaf.display())),
                Ok(()) => {}
            }
        }
    }
    let request: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
    fs::write(own.join("cgroup.subtree_control"), request.join(" ")).map_err(|e| {
        format!(
            "cannot enable {} in {}/cgroup.subtree_control: {e}",
            wanted.join(" "),
            own.display()
        )
    })
}

fn detect_v2(own: &Path, mkdir: Mkdir) -> Result<CgroupLayout, String> {
    let available = read_words(&own.join("cgroup.controllers"));
    for needed in ["memory", "pids"] {
        if !available.iter().any(|c| c == needed) {
            return Err(format!(
                "cgroup v2 controller '{needed}' is not available in {} (have: '{}')",
                own.display(),
                available.join(" ")
            ));
        }
    }
    let cpu = available.iter().any(|c| c == "cpu");
    let wanted: &[&str] = if cpu {
        &["memory", "pids", "cpu"]
    } else {
        &["memory", "pids"]
    };
    enable_controllers(own, wanted, mkdir)?;
    let parent = own.join(SUBTREE);
    ensure_dir(mkdir, &parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    enable_controllers(&parent, wanted, mkdir)?;
    Ok(CgroupLayout::V2 { parent, cpu })
}

fn detect_v1(
    membership: &[MembershipLine],
    mounts: &[CgroupMount],
    parent_override: Option<&Path>,
    mkdir: Mkdir,
) -> Result<CgroupLayout, String> {
    let own = |controller: &str| -> Result<PathBuf, String> {
        let mount_dir = v1_own_dir(membership, mounts, controller)
            .ok_or_else(|| format!("cgroup v1 controller '{controller}' is not mounted"))?;
        Ok(match parent_override {
            // An override is a cgroup path inside each hierarchy.
            Some(p) => {
                let mount = mounts
                    .iter()
                    .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller));
                match mount {
                    Some(m) => m.mount_point.join(p.strip_prefix("/").unwrap_or(p)),
                    None => mount_dir,
                }
            }
            None => mount_dir.join(SUBTREE),
        })
    };
    let memory = own("memory")?;
    let pids = own("pids")?;
    let cpuacct = own("cpuacct").ok();
    let cpu = own("cpu").ok().filter(|dir| Some(dir) != cpuacct.as_ref());
    for dir in [Some(&memory), Some(&pids), cpuacct.as_ref(), cpu.as_ref()]
        .into_iter()
        .flatten()
    {
        ensure_dir(mkdir, dir).map_err(|e| {
            format!(
                "cgroup v1 hierarchy is not writable ({}: {e})",
                dir.display()
            )
        })?;
    }
    Ok(CgroupLayout::V1 {
        memory,
        pids,
        cpuacct,
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBERSHIP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn own_dirs_follow_membership_and_mounts() {
        let membership = parse_membership(MEMBERSHIP);
        let mounts = parse_mounts(MOUNTS);
        assert_eq!(mounts.len(), 4);
        assert_eq!(
            v1_own_dir(&membership, &mounts, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            v1_own_dir(&membership, &mounts, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            v2_own_dir(&membership, &mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn mount_root_is_stripped() {
        let mount = CgroupMount {
            root: "/outer".into(),
            mount_point: PathBuf::from("/sys/fs/cgroup/memory"),
            v2: false,
            controllers: vec!["memory".into()],
        };
        assert_eq!(
            dir_in_mount(&mount, "/outer/inner"),
            PathBuf::from("/sys/fs/cgroup/memory/inner")
        );
    }
}

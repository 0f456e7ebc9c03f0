//! Compiles the in-sandbox init shim (`init/main.rs`, standard library only) into a
//! stand-alone executable that the library embeds and hands to bubblewrap at run time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let output = out_dir.join("sandbox-init");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "sandbox_init",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=2",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
        ])
        .arg("-o")
        .arg(&output)
        .arg("init/main.rs")
        .status()
        .expect("cannot run rustc for the sandbox init shim");
    assert!(status.success(), "compiling the sandbox init shim failed");
}

//! The attack suite: each test is a real hostile script run through the local executor, and
//! asserts both that the attack is contained and that the reported outcome is right.

mod common;

#[path = "attacks/escape.rs"]
mod escape;
#[path = "attacks/network.rs"]
mod network;
#[path = "attacks/resources.rs"]
mod resources;
#[path = "attacks/reuse.rs"]
mod reuse;
#[path = "attacks/secrets.rs"]
mod secrets;
#[path = "attacks/state.rs"]
mod state;
#[path = "attacks/syscalls.rs"]
mod syscalls;

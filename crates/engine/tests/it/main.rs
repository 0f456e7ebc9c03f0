//! End-to-end tests of the execution pipeline: the SQLite store, the in-process bus and all four
//! components in one process, driven the way the API drives them.

mod harness;
mod scripted;

mod cancel;
mod flow;
mod instances;
mod queue;
mod recovery;
mod saga;
mod sandbox;
mod stall;

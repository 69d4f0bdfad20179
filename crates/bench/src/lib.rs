//! What the benchmark binaries (`chime-sync-bench` and `bench-reconcile`) share to run a
//! function's handler in-process as Lambda runs it: idp-sync's configuration as a deployment
//! has it, a Chime fake with a fixed latency, trust in a fake's throw-away root, and the
//! functions' current_thread runtime. One copy, so the two binaries measure the same set-up.

pub mod in_process;

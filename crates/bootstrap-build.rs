//! The build script of every Lambda bootstrap crate (each `Cargo.toml` names this file as its
//! `build`): link the bootstrap as a position-dependent executable.
//!
//! Why: a position-independent executable (the toolchain's default) carries thousands of
//! relative relocations (`.rela.dyn`) that the loader applies at every cold start, and applying
//! them writes to the vtables and constants in `.data.rel.ro`, which then stay resident as
//! private copies. Linked with `-no-pie`, the addresses are fixed at link time: both are gone,
//! and the binary and its peak RSS shrink (measured in docs/PERFORMANCE.md, "Peak RSS").
//!
//! The cost: the executable's own code and data load at a fixed address, so address-space
//! layout randomisation still moves the stack, the heap, the mmap area and the shared
//! libraries (glibc, libgcc_s), but no longer the executable's image. Go builds Lambda
//! functions the same way by default on Linux; for a memory-safe program that reads only
//! JSON events and AWS responses, the resident memory is worth more. The code itself is still
//! compiled position-independent (the linker resolves it), so nothing else changes.
//!
//! Only the bootstraps' binaries get the flag (`rustc-link-arg-bins`): their tests, the other
//! crates and the build's own proc-macros are linked as before.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=../bootstrap-build.rs");
}

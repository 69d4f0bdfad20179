//! The build script of every Lambda bootstrap crate (each `Cargo.toml` names this file as its
//! `build`): link the bootstrap as a position-dependent executable.
//!
//! Why: a position-independent executable (the toolchain's default) carries ~17,000 relative
//! relocations (`.rela.dyn`, 0.4 MB of idp-sync's 6.3 MB) that the loader applies at every
//! cold start, and applying them writes to the 0.27 MB of vtables and constants in
//! `.data.rel.ro`, which then stay resident as private copies. Linked with `-no-pie`, the
//! addresses are fixed at link time: both are gone, idp-sync's binary shrank by 0.37 MB and its
//! peak RSS by ~0.5 MB (docs/PERFORMANCE.md, "Peak RSS").
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

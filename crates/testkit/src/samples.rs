//! The users of the sample events in `events/`, by the `sub` every sample
//! and every test uses for them (one list, so a sample's user cannot drift
//! between tests).

/// Ada Lovelace.
pub const ADA: &str = "1d4f6a8c-2b3e-4c5d-9e7f-8a0b1c2d3e4f";
/// Alan Turing.
pub const ALAN: &str = "3c7a9e12-5b4d-4f6e-8a2c-1e9d7b5f3a60";
/// Barbara Liskov.
pub const BARBARA: &str = "c2f6a8d0-4e1b-4b7c-8f3a-6d9e1b5c7a24";
/// Donald Knuth.
pub const DONALD: &str = "2b9d7f15-6e3c-4a8b-a0d2-5c7e9f1b3d86";
/// Edsger Dijkstra.
pub const EDSGER: &str = "51f0c3b8-2e7a-4c19-b6d4-8a3e5f7c9d02";
/// Frances Allen.
pub const FRANCES: &str = "8e5a1c7d-3f9b-4d2e-a6c8-0b4f2d6e8a17";
/// Grace Hopper.
pub const GRACE: &str = "9b2e4f60-7c1d-4e3a-9f5b-2d8c6a1e0b47";
/// Hedy Lamarr. Her Chime calls fail in the replay's outage (`chime_sync_core::replay::OUTAGE_SUB`; tests/e2e/replay.rs checks they agree).
pub const HEDY: &str = "0000dead-0000-4000-8000-000000000503";
/// Katherine Johnson.
pub const KATHERINE: &str = "d4e8f1a2-3b6c-4d9e-a5f7-0c2b4e6d8f13";
/// Margaret Hamilton.
pub const MARGARET: &str = "7a3d5e9f-1c8b-4a2e-9d6f-4b0e2c8a6d35";
/// Radia Perlman.
pub const RADIA: &str = "e8b4c0d6-9a2f-4e5b-b1c7-3f6a8d0e2b59";
/// Annie Easley. A credential-exchange sample's user, created on her first exchange.
pub const ANNIE: &str = "4a7c1e9b-3d5f-4b2a-8c6e-0f1d3b5a7c92";
/// Mary Jackson. A credential-exchange sample's user, created on her first exchange.
pub const MARY: &str = "b6e2d8f4-1a3c-4e5b-9d7f-2c4a6e8b0d13";
/// Dorothy Vaughan: in the demo pool only, created by an administrator.
pub const DOROTHY: &str = "f3a9c5e1-7b2d-4c8e-9a6f-1d3b5e7c9a20";

//! The simulator's rules against the public API, as a user of the crate calls it: one module
//! per part (SQS's queue rules, the event source mapping). They live in the library's unit
//! tests so the crate links one test binary.

mod event_source_mapping;
mod sqs_rules;

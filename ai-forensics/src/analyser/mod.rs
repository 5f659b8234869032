//! The external analyser loop: the recorder streams batches of records to an
//! analyser (HTTP, or HTTP over a Unix socket) and acts on the verdicts that
//! come back. Both directions are signed with a shared secret (HMAC-SHA256),
//! so verdicts cannot be forged by a traced process. See `docs/analyser.md`.
pub mod client;
pub mod protocol;
pub mod server;

//! Arbitrary bytes → a sequence of messages (raw frames decoded with `decode_body`, and
//! messages built from the bytes) fed to a sans-IO `ParentSession` over a sled store in a
//! scratch directory: no panic, every action well-formed, nothing stored outside the
//! child's subtree, no document without a valid signature. See `lmsync_fuzz::run_parent_session`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmsync_fuzz::run_parent_session(data);
});

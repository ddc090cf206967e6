//! Arbitrary bytes as one frame (length prefix + body) and as a bare body: never a panic,
//! an abort or an allocation the input does not pay for; a prefix over the limit is
//! refused; whatever decodes re-encodes canonically to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lmsync::core::wire::{FrameError, MAX_FRAME, decode_body, frame_len};
use lmsync_fuzz::check_accepted;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode_body(data) {
        check_accepted(data, &m);
    }
    if let Some((prefix, rest)) = data.split_first_chunk::<4>() {
        match frame_len(*prefix) {
            Ok(len) => {
                assert!(len <= MAX_FRAME);
                let body = &rest[..len.min(rest.len())];
                if let Ok(m) = decode_body(body) {
                    check_accepted(body, &m);
                }
            }
            Err(FrameError::TooLong(len)) => assert!(len > MAX_FRAME),
            Err(e) => panic!("frame_len failed otherwise: {e}"),
        }
    }
});

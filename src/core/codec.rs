//! The one binary codec: bincode 2 (serde) with a size limit and exact-length decoding.
//!
//! bincode 2 allocates whatever a length prefix claims unless a limit is configured, and
//! silently ignores trailing bytes; both are hostile-input hazards, so every decode here
//! is limited and must consume its whole input. Encoding is deterministic for a given
//! value, which is what content hashes rely on; decoding is *not* canonical (bincode
//! accepts over-long varints), so never compare received bytes, compare re-encodings.

use serde::{Serialize, de::DeserializeOwned};

/// The largest value this codec will decode: 16 MiB.
pub const MAX_DECODE_BYTES: usize = 16 << 20;

/// Why bytes could not be decoded or a value encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are malformed, or claim more than [`MAX_DECODE_BYTES`].
    #[error("malformed encoding: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The value decoded but did not use every byte.
    #[error("{trailing} trailing bytes after the encoded value")]
    TrailingBytes {
        /// How many bytes were left over.
        trailing: usize,
    },
    /// The value could not be encoded (a bug: our types always encode).
    #[error("cannot encode value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// Encodes `value` into a new buffer.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

/// The length of `value`'s encoding, counted without building it (sizing a batch).
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config())?;
    Ok(size.bytes_written)
}

/// Appends the encoding of `value` to `buf`.
pub fn encode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, config())?;
    buf.extend_from_slice(&bytes);
    Ok(())
}

/// Decodes exactly one value from `bytes`, rejecting trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_length_prefix_is_refused_not_allocated() {
        // A 10-byte input claiming a 2^40-byte vector must fail cleanly.
        let hostile = [0xFD, 0, 0, 0, 0, 0, 1, 0, 0];
        let err = decode::<Vec<u8>>(&hostile).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err}");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&(7u64, String::from("x"))).unwrap();
        bytes.push(0);
        let err = decode::<(u64, String)>(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::TrailingBytes { trailing: 1 }));
    }

    #[test]
    fn encoded_len_counts_what_encode_writes() {
        let value = (
            300u64,
            vec![7u8; 200],
            Some(String::from("岗位信息")),
            -5i32,
        );
        assert_eq!(encoded_len(&value).unwrap(), encode(&value).unwrap().len());
    }

    #[test]
    fn round_trips() {
        let value = (42u64, vec![1u8, 2, 3], Some(String::from("岗位")));
        let bytes = encode(&value).unwrap();
        assert_eq!(
            decode::<(u64, Vec<u8>, Option<String>)>(&bytes).unwrap(),
            value
        );
    }
}

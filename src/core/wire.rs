//! The sync protocol's messages (version 4) and their framing.
//!
//! Version 2 added `DocumentsReturned`: a child gives its parent back the parent's own
//! documents the parent lacks (after the parent rebuilt its store), and says when it has.
//! Version 3 added `DocumentsHeld`: the list of documents held names each one's issuer,
//! since a document is identified by kind, issuer and id. Version 4 adds no message: its
//! anti-entropy descends one level below the leaves (`Buckets` at depth 4, the 16
//! sub-leaves of each leaf), a child may answer depth 1 with depth 3, and a `Leaves` or
//! `Fetch` whose salt has its top bit set lists sub-leaves. A node still speaks the older
//! versions with an older peer (the lower of the two maxima is chosen): version 3
//! anti-entropy with a version-3 peer, `Documents` lists without issuers to a version-2
//! one.
//!
//! One bidirectional QUIC stream per session carries frames: a 4-byte big-endian length,
//! then one bincode-encoded [`Message`]. Lengths above [`MAX_FRAME`] are refused before any
//! allocation. The enum's variant order is the wire format: append new variants, never
//! reorder or remove them (the golden-bytes test freezes it). A peer speaking another
//! protocol version is refused in the handshake with a reason on both sides.

use serde::{Deserialize, Serialize};

use crate::core::codec::{self, CodecError};
use crate::core::model::document::{HeldDocument, StoredDocument};
use crate::core::model::{NodeCode, Record};

/// A record's fingerprint as listed in a leaf: 48 bits of a salted hash.
pub type LeafFp = [u8; 6];

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 4;
/// The oldest protocol version this build accepts. Version 1 peers are refused: a
/// version-1 parent would close the session on its own returned documents.
pub const MIN_PROTOCOL_VERSION: u16 = 2;
/// Largest frame, bytes (a batch of records must fit well below it).
pub const MAX_FRAME: usize = 8 << 20;

/// Why a session ends, sent to the peer before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// No common protocol version.
    Version,
    /// The certificate's node code differs from the one announced, or the peer is not
    /// where the tree says it should be.
    Identity,
    /// The peer sent something it may not send (records outside its subtree, documents
    /// from below, a forged signature).
    Unauthorised,
    /// A message broke the protocol (unexpected, malformed, out of order).
    Protocol,
    /// The store failed; try again later.
    Unavailable,
}

/// Every message of the sync protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// First message of the child: who it is and what it speaks.
    Hello {
        /// Protocol versions `[min, max]` the child speaks.
        protocol: (u16, u16),
        /// The child's node code (must match its certificate).
        node: NodeCode,
        /// The child's store id.
        store_id: [u8; 16],
    },
    /// The parent's answer to `Hello`: the version chosen.
    Welcome {
        /// Version both will speak.
        protocol: u16,
        /// The parent's node code.
        node: NodeCode,
        /// The parent's store id.
        store_id: [u8; 16],
    },
    /// Either side ends the session, saying why.
    Refuse {
        /// Category.
        code: RefusalCode,
        /// A sentence for the operator on the other side.
        reason: String,
    },
    /// Child → parent: for each owner the child holds, how far its records are complete.
    Offer {
        /// `(owner, complete_through)`.
        owners: Vec<(NodeCode, u64)>,
    },
    /// Parent → child: send `owner`'s records after `after` (the parent's watermark).
    Want {
        /// Owner.
        owner: NodeCode,
        /// The parent has every seq up to this one.
        after: u64,
    },
    /// Child → parent: every current record of `owner` whose seq lies in `from..=to`.
    Batch {
        /// Owner.
        owner: NodeCode,
        /// First seq covered.
        from: u64,
        /// Last seq covered.
        to: u64,
        /// The records (superseded seqs in the range have none).
        records: Vec<Record>,
    },
    /// Parent → child: `owner`'s records through `through` are durable at the parent;
    /// `ministry` says how far the ministry has durably stored them, when known.
    Ack {
        /// Owner.
        owner: NodeCode,
        /// Durable at the parent through this seq.
        through: u64,
        /// Durable at the ministry through this seq.
        ministry: u64,
    },
    /// Parent → child: a document flowing down.
    Document(StoredDocument),
    /// Keeps an idle session alive and lets the child ask for news.
    Ping,
    /// Child → parent, anti-entropy: per owner, how far its records are complete, how
    /// many there are and the sum of their fingerprints.
    Digests {
        /// `(owner, complete_through, records, fingerprint sum)`.
        owners: Vec<(NodeCode, u64, u64, u128)>,
    },
    /// Either way, anti-entropy: the 16 buckets at `depth` under each of `parents`.
    Buckets {
        /// Owner.
        owner: NodeCode,
        /// Depth 1–3 (3 = leaves; version 4 also 4, the sub-leaves).
        depth: u8,
        /// Bucket indices at `depth - 1`.
        parents: Vec<u16>,
        /// `(count, fingerprint)` per bucket, 16 per parent.
        buckets: Vec<(u32, u64)>,
    },
    /// Child → parent, anti-entropy: short salted fingerprints (in key order) of the
    /// child's records in leaves that differ.
    Leaves {
        /// Owner.
        owner: NodeCode,
        /// Salt of this round's fingerprints (changes every round, so that a collision
        /// cannot hide a difference twice). Version 4: with the top bit set, the listed
        /// indices are sub-leaves (leaf × 16 + the next 4 bits of the record key).
        salt: u64,
        /// `(leaf, fingerprints)`.
        leaves: Vec<(u16, Vec<LeafFp>)>,
    },
    /// Parent → child, anti-entropy: send the records with these fingerprints.
    Fetch {
        /// Owner.
        owner: NodeCode,
        /// The salt the fingerprints were made with.
        salt: u64,
        /// `(leaf, fingerprints)`.
        leaves: Vec<(u16, Vec<LeafFp>)>,
    },
    /// Child → parent, anti-entropy: the records asked for.
    Repair {
        /// Owner.
        owner: NodeCode,
        /// Records.
        records: Vec<Record>,
    },
    /// Either way, `(kind, id, version)` of documents held. Child → parent: every document
    /// the child holds; the parent answers with a `Document` for each newer one the child
    /// should have, then with its own list. Parent → child: the documents the parent
    /// issued and those the child reported up; the child answers with a `Document` for
    /// each of these it holds newer, then `DocumentsReturned`.
    Documents {
        /// What the sender holds.
        have: Vec<(String, String, u64)>,
    },
    /// Child → parent: the child lost its store; send its own records back, after `after`.
    /// Records then flow down as `Batch`es, each acknowledged by the child with `Ack`.
    Restore {
        /// The child itself.
        owner: NodeCode,
        /// The child holds its records through this seq.
        after: u64,
    },
    /// Parent → child: the restore is complete through `through`.
    Restored {
        /// The child itself.
        owner: NodeCode,
        /// Last seq sent.
        through: u64,
    },
    /// Child → parent, after the `Document`s answering the parent's `Documents`: every
    /// document the parent lacked or held older has been sent.
    DocumentsReturned {
        /// How many `Document`s were sent.
        count: u32,
    },
    /// Version 3's `Documents`: the same exchange, each document named by kind, issuer and
    /// id.
    DocumentsHeld {
        /// What the sender holds.
        have: Vec<HeldDocument>,
    },
}

/// Encodes one message as a frame (length prefix + body).
pub fn encode_frame(message: &Message) -> Result<Vec<u8>, CodecError> {
    let body = codec::encode(message)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLong(usize),
    /// The body does not decode to exactly one message.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Checks a frame's 4-byte length prefix before anything is allocated for it.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > MAX_FRAME {
        return Err(FrameError::TooLong(len));
    }
    Ok(len)
}

/// Decodes a frame body (without its length prefix).
pub fn decode_body(body: &[u8]) -> Result<Message, FrameError> {
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLong(body.len()));
    }
    Ok(codec::decode(body)?)
}

impl Message {
    /// The variant's name, for error sentences and tests.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Welcome { .. } => "Welcome",
            Message::Refuse { .. } => "Refuse",
            Message::Offer { .. } => "Offer",
            Message::Want { .. } => "Want",
            Message::Batch { .. } => "Batch",
            Message::Ack { .. } => "Ack",
            Message::Document(_) => "Document",
            Message::Ping => "Ping",
            Message::Digests { .. } => "Digests",
            Message::Buckets { .. } => "Buckets",
            Message::Leaves { .. } => "Leaves",
            Message::Fetch { .. } => "Fetch",
            Message::Repair { .. } => "Repair",
            Message::Documents { .. } => "Documents",
            Message::Restore { .. } => "Restore",
            Message::Restored { .. } => "Restored",
            Message::DocumentsReturned { .. } => "DocumentsReturned",
            Message::DocumentsHeld { .. } => "DocumentsHeld",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    /// Freezes the encoding (versions 2 and 3 each appended one variant; version 4 changed
    /// only what anti-entropy's messages may say, not their bytes): if this test
    /// fails, the wire format changed and peers of this version can no longer talk to the
    /// new build.
    #[test]
    fn golden_bytes() {
        let hello = Message::Hello {
            protocol: (1, 1),
            node: code("440100"),
            store_id: [7; 16],
        };
        assert_eq!(
            hex::encode(encode_frame(&hello).unwrap()),
            "00000018000101fc24b7060007070707070707070707070707070707"
        );
        let want = Message::Want {
            owner: code("440100"),
            after: 300,
        };
        assert_eq!(
            hex::encode(encode_frame(&want).unwrap()),
            "0000000904fc24b70600fb2c01"
        );
        let ack = Message::Ack {
            owner: code("440100"),
            through: 5,
            ministry: 3,
        };
        assert_eq!(
            hex::encode(encode_frame(&ack).unwrap()),
            "0000000806fc24b706000503"
        );
        let returned = Message::DocumentsReturned { count: 3 };
        assert_eq!(
            hex::encode(encode_frame(&returned).unwrap()),
            "000000021103"
        );
        let held = Message::DocumentsHeld {
            have: vec![HeldDocument {
                kind: "policy".into(),
                issuer: code("440000"),
                id: "P".into(),
                version: 2,
            }],
        };
        assert_eq!(
            hex::encode(encode_frame(&held).unwrap()),
            "00000011120106706f6c696379fcc0b60600015002"
        );
    }

    #[test]
    fn frames_round_trip() {
        for m in [
            Message::Ping,
            Message::Offer {
                owners: vec![(code("440100"), 9)],
            },
            Message::Refuse {
                code: RefusalCode::Version,
                reason: "speaks 2..=3".into(),
            },
        ] {
            let frame = encode_frame(&m).unwrap();
            let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
            assert_eq!(len, frame.len() - 4);
            assert_eq!(decode_body(&frame[4..]).unwrap(), m);
        }
    }

    #[test]
    fn oversized_and_trailing_frames_are_refused() {
        assert!(matches!(
            frame_len([0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::TooLong(_))
        ));
        let mut body = codec::encode(&Message::Ping).unwrap();
        body.push(0);
        assert!(matches!(
            decode_body(&body),
            Err(FrameError::Codec(CodecError::TrailingBytes { .. }))
        ));
    }
}

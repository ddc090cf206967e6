//! The change feed's cursor (`GET /v1/changes`): where a consumer stands in each owner's
//! change log, as an opaque, compact text.
//!
//! A store has no node-wide commit sequence, only one change log per owner, ordered by the
//! owner's seq. A cursor therefore holds one position per owner (the seq through which
//! the consumer has been given that owner's records), plus what makes it safe to hand
//! back: the node and a tag of the store it was issued by (a cursor of another node is
//! refused, one of an earlier store of this node — restored or rebuilt since — is
//! expired), and the filters it was issued for (a cursor that skipped the other kinds is
//! no cursor for all kinds).
//!
//! The text is base64url (no padding) of: a version byte (1); the node (LEB128); the
//! store tag (8 bytes); a filter byte (bit 0: owner, bit 1: kind) followed by the owner
//! (LEB128) and the kind (its index) when set; the number of positions, then each as the
//! owner's code minus the previous one and the seq (LEB128 each, owners ascending, seqs
//! above 0); and the first 4 bytes of the blake3 hash of everything before them, so that
//! a cursor damaged in transit is told apart from one that names another store. About 4
//! to 6 bytes per owner: a ministry holding 150 owners issues cursors of about 1 KB.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::core::model::{Kind, NodeCode};

/// Longest cursor accepted, in characters: about 9 KB decoded, some 1,500 owners. It
/// keeps a request with a cursor well inside the API's URI limit.
pub(super) const MAX_CURSOR_CHARS: usize = 12 * 1024;

/// The cursor format this build writes and reads.
const VERSION: u8 = 1;
/// Bytes of the check at the end.
const CHECK: usize = 4;
/// Bytes of the store tag.
pub(super) const TAG: usize = 8;

const HAS_OWNER: u8 = 1;
const HAS_KIND: u8 = 2;

/// Where a consumer of the change feed stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor {
    /// The node that issued it.
    pub(super) node: NodeCode,
    /// The first bytes of the issuing store's id.
    pub(super) store: [u8; TAG],
    /// The owner filter it was issued for.
    pub(super) owner: Option<NodeCode>,
    /// The kind filter it was issued for.
    pub(super) kind: Option<Kind>,
    /// Per owner, the seq through which its records have been delivered (0: none; absent
    /// owners are at 0).
    pub(super) positions: BTreeMap<NodeCode, u64>,
}

/// Why a cursor text is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CursorError {
    /// Longer than [`MAX_CURSOR_CHARS`].
    #[error("the cursor is {0} characters long; the limit is {MAX_CURSOR_CHARS}")]
    TooLong(usize),
    /// Not base64url.
    #[error("the cursor is not base64url text")]
    NotBase64,
    /// The check does not match: damaged or cut short.
    #[error("the cursor is damaged (its check does not match); was it cut short?")]
    Damaged,
    /// Written by another format version.
    #[error("cursor format {0} is not one this node reads (it reads {VERSION})")]
    Version(u8),
    /// The check matched but the content does not decode (hand-made).
    #[error("the cursor does not decode: {0}")]
    Malformed(&'static str),
}

impl Cursor {
    /// The start of the feed of `node`'s store `store` under the given filters.
    pub(super) fn start(
        node: NodeCode,
        store: [u8; TAG],
        owner: Option<NodeCode>,
        kind: Option<Kind>,
    ) -> Self {
        Cursor {
            node,
            store,
            owner,
            kind,
            positions: BTreeMap::new(),
        }
    }

    /// The position of `owner` (0 when none was recorded).
    pub(super) fn at(&self, owner: NodeCode) -> u64 {
        self.positions.get(&owner).copied().unwrap_or(0)
    }

    /// Moves `owner`'s position to `seq`.
    pub(super) fn advance(&mut self, owner: NodeCode, seq: u64) {
        if seq > 0 {
            self.positions.insert(owner, seq);
        }
    }

    /// The cursor's text.
    pub(super) fn encode(&self) -> String {
        let mut b = Vec::with_capacity(16 + 6 * self.positions.len());
        b.push(VERSION);
        put(&mut b, u64::from(self.node.get()));
        b.extend_from_slice(&self.store);
        let mut flags = 0;
        if self.owner.is_some() {
            flags |= HAS_OWNER;
        }
        if self.kind.is_some() {
            flags |= HAS_KIND;
        }
        b.push(flags);
        if let Some(o) = self.owner {
            put(&mut b, u64::from(o.get()));
        }
        if let Some(k) = self.kind {
            b.push(kind_byte(k));
        }
        let positions: Vec<(u32, u64)> = self
            .positions
            .iter()
            .filter(|(_, s)| **s > 0)
            .map(|(o, s)| (o.get(), *s))
            .collect();
        put(&mut b, positions.len() as u64);
        let mut previous = 0u32;
        for (owner, seq) in positions {
            put(&mut b, u64::from(owner - previous));
            put(&mut b, seq);
            previous = owner;
        }
        let check = blake3::hash(&b);
        b.extend_from_slice(&check.as_bytes()[..CHECK]);
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Reads a cursor's text (size-limited, strict: every byte is accounted for).
    pub(super) fn decode(text: &str) -> Result<Self, CursorError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(CursorError::TooLong(text.len()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::NotBase64)?;
        let Some(body_len) = bytes.len().checked_sub(CHECK) else {
            return Err(CursorError::Damaged);
        };
        let (body, check) = bytes.split_at(body_len);
        if blake3::hash(body).as_bytes()[..CHECK] != *check {
            return Err(CursorError::Damaged);
        }
        let mut r = Reader(body);
        let version = r.byte()?;
        if version != VERSION {
            return Err(CursorError::Version(version));
        }
        let node = r.code()?;
        let store: [u8; TAG] = r
            .take(TAG)?
            .try_into()
            .map_err(|_| CursorError::Malformed("store tag"))?;
        let flags = r.byte()?;
        if flags & !(HAS_OWNER | HAS_KIND) != 0 {
            return Err(CursorError::Malformed("unknown filter bits"));
        }
        let owner = if flags & HAS_OWNER != 0 {
            Some(r.code()?)
        } else {
            None
        };
        let kind = if flags & HAS_KIND != 0 {
            let i = usize::from(r.byte()?);
            Some(
                *Kind::ALL
                    .get(i)
                    .ok_or(CursorError::Malformed("unknown kind"))?,
            )
        } else {
            None
        };
        let count = r.varint()?;
        let mut positions = BTreeMap::new();
        let mut previous = 0u64;
        for _ in 0..count {
            let delta = r.varint()?;
            if delta == 0 && !positions.is_empty() {
                return Err(CursorError::Malformed("owners out of order"));
            }
            let code = previous
                .checked_add(delta)
                .ok_or(CursorError::Malformed("owner out of range"))?;
            let owner = node_code(code)?;
            let seq = r.varint()?;
            if seq == 0 {
                return Err(CursorError::Malformed("a position at 0"));
            }
            positions.insert(owner, seq);
            previous = code;
        }
        if !r.0.is_empty() {
            return Err(CursorError::Malformed("bytes after the positions"));
        }
        Ok(Cursor {
            node,
            store,
            owner,
            kind,
            positions,
        })
    }
}

fn kind_byte(k: Kind) -> u8 {
    u8::try_from(k.index()).unwrap_or(u8::MAX)
}

fn node_code(code: u64) -> Result<NodeCode, CursorError> {
    u32::try_from(code)
        .ok()
        .and_then(|c| NodeCode::new(c).ok())
        .ok_or(CursorError::Malformed("not a node code"))
}

/// Appends `v` as LEB128.
fn put(b: &mut Vec<u8>, mut v: u64) {
    loop {
        let low = u8::try_from(v & 0x7f).unwrap_or(0);
        v >>= 7;
        if v == 0 {
            b.push(low);
            return;
        }
        b.push(low | 0x80);
    }
}

/// Reads a cursor's bytes front to back.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CursorError> {
        if self.0.len() < n {
            return Err(CursorError::Malformed("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CursorError> {
        Ok(self.take(1)?[0])
    }

    /// A LEB128 u64 of at most 10 bytes, in its shortest form.
    fn varint(&mut self) -> Result<u64, CursorError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err(CursorError::Malformed("a number over 64 bits"));
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(CursorError::Malformed("a number not in its shortest form"));
                }
                return Ok(v);
            }
        }
        Err(CursorError::Malformed("a number over 64 bits"))
    }

    fn code(&mut self) -> Result<NodeCode, CursorError> {
        let v = self.varint()?;
        node_code(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    fn sample() -> Cursor {
        let mut c = Cursor::start(code("440000"), [7; TAG], None, Some(Kind::Vacancy));
        c.advance(code("440100"), 5);
        c.advance(code("440300"), 1 << 40);
        c.advance(code("440000"), 1);
        c
    }

    #[test]
    fn a_cursor_reads_back_as_written() {
        let c = sample();
        let text = c.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text).unwrap(), c);
        let plain = Cursor::start(code("100000"), [0; TAG], Some(code("440100")), None);
        assert_eq!(Cursor::decode(&plain.encode()).unwrap(), plain);
    }

    #[test]
    fn a_position_costs_a_few_bytes() {
        let mut c = Cursor::start(code("100000"), [1; TAG], None, None);
        let provinces = [
            110000u32, 120000, 130000, 140000, 150000, 210000, 220000, 230000,
        ];
        for p in provinces {
            for city in 1..=15u32 {
                c.advance(NodeCode::new(p + city * 100).unwrap(), 250_000);
            }
        }
        let text = c.encode();
        assert!(
            text.len() < 120 * 8,
            "{} characters for 120 owners",
            text.len()
        );
    }

    #[test]
    fn damaged_and_hand_made_cursors_are_refused() {
        let text = sample().encode();
        // Cut short, or one character changed: the check tells.
        assert_eq!(
            Cursor::decode(&text[..text.len() - 4]),
            Err(CursorError::Damaged)
        );
        let mut chars: Vec<char> = text.chars().collect();
        chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
        let changed: String = chars.into_iter().collect();
        assert_eq!(Cursor::decode(&changed), Err(CursorError::Damaged));
        assert_eq!(Cursor::decode("not a cursor!"), Err(CursorError::NotBase64));
        assert_eq!(Cursor::decode(""), Err(CursorError::Damaged));
        assert!(matches!(
            Cursor::decode(&"A".repeat(MAX_CURSOR_CHARS + 1)),
            Err(CursorError::TooLong(_))
        ));
        // A well-checked body of another version, or with bytes after the positions.
        let sealed = |mut body: Vec<u8>| {
            let check = blake3::hash(&body);
            body.extend_from_slice(&check.as_bytes()[..CHECK]);
            URL_SAFE_NO_PAD.encode(body)
        };
        assert_eq!(
            Cursor::decode(&sealed(vec![2])),
            Err(CursorError::Version(2))
        );
        let mut body = URL_SAFE_NO_PAD.decode(sample().encode()).unwrap();
        body.truncate(body.len() - CHECK);
        body.push(0);
        assert!(matches!(
            Cursor::decode(&sealed(body)),
            Err(CursorError::Malformed(_))
        ));
        assert!(matches!(
            Cursor::decode(&sealed(vec![1, 0x80])),
            Err(CursorError::Malformed(_))
        ));
    }

    #[test]
    fn numbers_are_read_in_their_shortest_form_only() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put(&mut b, v);
            assert_eq!(Reader(&b).varint(), Ok(v));
        }
        assert!(Reader(&[0x80, 0x00]).varint().is_err());
        assert!(Reader(&[0xff; 11]).varint().is_err());
    }
}

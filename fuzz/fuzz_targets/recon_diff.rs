//! The reconciliation diff on arbitrary inputs. Part one: two record sets described by
//! the bytes; descending the 16-way bucket tree with `reconcile::differing` must find exactly
//! the leaves holding their symmetric difference. Part two: `differing` on arbitrary
//! bucket lists (any lengths, parents below 4096) must not panic and must stay in range.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use lmsync::core::model::{Kind, RecordKey};
use lmsync::core::reconcile::{Bucket, Change, OwnerSummary, differing};
use lmsync_fuzz::{Bytes, differing_leaves as leaves};

fn fingerprint(kind: Kind, id: u16, version: u8) -> u128 {
    let mut h = blake3::Hasher::new_derive_key("lmsync fuzz fingerprint");
    h.update(&[kind as u8, version]);
    h.update(&id.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(out)
}

fn summary(set: &BTreeMap<RecordKey, (Kind, u128)>) -> OwnerSummary {
    let mut s = OwnerSummary::default();
    for (key, (kind, fp)) in set {
        s.apply(&Change {
            key: *key,
            kind: *kind,
            fp: Some(*fp),
            prev_fp: None,
        });
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let items = usize::from(b.u8());
    let (mut sa, mut sb) = (BTreeMap::new(), BTreeMap::new());
    for _ in 0..items {
        let kind = Kind::ALL[usize::from(b.u8()) % Kind::ALL.len()];
        let id = b.u16();
        let versions = b.u8();
        let key = RecordKey::of(kind, &id.to_string());
        let (va, vb) = (versions & 3, (versions >> 2) & 3);
        if va > 0 {
            sa.insert(key, (kind, fingerprint(kind, id, va)));
        }
        if vb > 0 {
            sb.insert(key, (kind, fingerprint(kind, id, vb)));
        }
    }
    let (a, bb) = (summary(&sa), summary(&sb));
    let found = leaves(&a, &bb);
    let pairs = |s: &BTreeMap<RecordKey, (Kind, u128)>| -> BTreeSet<(RecordKey, u128)> {
        s.iter().map(|(k, (_, fp))| (*k, *fp)).collect()
    };
    let expected: BTreeSet<u16> = pairs(&sa)
        .symmetric_difference(&pairs(&sb))
        .map(|(k, _)| u16::try_from(k.bucket()).expect("a leaf index"))
        .collect();
    assert_eq!(found.iter().copied().collect::<BTreeSet<u16>>(), expected);
    assert_eq!(leaves(&bb, &a), found);

    // Part two: arbitrary lists.
    let parents: Vec<u16> = (0..b.u8() % 8).map(|_| b.u16() % 4096).collect();
    let mut list = || -> Vec<Bucket> {
        (0..b.u8())
            .map(|_| Bucket {
                count: u32::from(b.u8() % 3),
                fp: u64::from(b.u8() % 3),
            })
            .collect()
    };
    let (mine, theirs) = (list(), list());
    let out = differing(&parents, &mine, &theirs);
    assert!(out.len() <= parents.len() * 16);
    assert!(out.iter().all(|d| parents.contains(&(d / 16))));
    assert_eq!(differing(&parents, &theirs, &mine), out);
});

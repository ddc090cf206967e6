//! Session-level helpers: sled stores driven by the real sans-IO sessions, with the
//! messages passed in memory (no transport), for tests of what the protocol decides.

use std::collections::VecDeque;
use std::sync::Arc;

use lmsync::core::model::NodeCode;
use lmsync::core::model::document::StoredDocument;
use lmsync::core::model::ingest::IngestContext;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::signature::DocumentVerifier;
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::protocol::{Action, ChildSession, Event, ParentSession};
use lmsync::core::store::{Store, WriteBatch};
use lmsync::core::wire::Message;
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::Planner;

pub fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

pub fn store(dir: &std::path::Path, node: NodeCode) -> SledStore {
    SledStore::create(dir, node, [7; 16], 0, sled_options(8 << 20)).unwrap()
}

/// Writes `n` generated records at `city` as its write path does.
pub fn write_generated(store: &SledStore, city: NodeCode, n: usize) {
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([3; 32], 1);
    let cx = IngestContext::new(city, &standards, Some(&key));
    let mut planner = Planner::new(store, city);
    for v in lmsync::tooling::synth::generate(city, n, 11) {
        planner
            .plan(cx.draft(v).unwrap(), &standards.code_refs(), 1_000)
            .unwrap();
    }
    store
        .commit(WriteBatch {
            records: planner.into_writes(),
            ..WriteBatch::default()
        })
        .unwrap();
}

/// A document verifier for a fresh network CA.
pub fn verifier() -> DocumentVerifier {
    Signer::new().verifier
}

/// A network CA that signs documents as any node, and the verifier that trusts it.
pub struct Signer {
    dir: tempfile::TempDir,
    /// Verifies what this CA's nodes sign.
    pub verifier: DocumentVerifier,
}

impl Signer {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        lmsync::node::pki::init_ca(&dir.path().join("ca")).unwrap();
        let ca = std::fs::read_to_string(dir.path().join("ca/ca.crt")).unwrap();
        let verifier = DocumentVerifier::new(&ca).unwrap();
        Signer { dir, verifier }
    }

    /// A `policy` document `id` at `version`, signed by `issuer`.
    pub fn policy(&self, issuer: NodeCode, id: &str, version: u64) -> StoredDocument {
        let body = format!(r#"{{"title":"{id}","version":{version}}}"#);
        self.document(
            issuer,
            lmsync::core::model::document::POLICY,
            id,
            version,
            &body,
        )
    }

    /// A document of `kind` with `body`, signed by `issuer`.
    pub fn document(
        &self,
        issuer: NodeCode,
        kind: &str,
        id: &str,
        version: u64,
        body: &str,
    ) -> StoredDocument {
        let out = self.dir.path().join(issuer.to_string());
        if !out.exists() {
            lmsync::node::pki::issue(&self.dir.path().join("ca"), issuer, &out, 1).unwrap();
        }
        let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
        let mut doc = StoredDocument {
            kind: kind.into(),
            id: id.into(),
            issuer,
            version,
            body: body.into(),
            certificate: Vec::new(),
            signature: Vec::new(),
        };
        lmsync::core::model::signature::sign(&mut doc, &read("node.crt"), &read("node.key"))
            .unwrap();
        doc
    }
}

/// Stores `docs` as if they had been published or received.
pub fn hold(store: &SledStore, docs: Vec<StoredDocument>) {
    store
        .commit(WriteBatch {
            documents: docs,
            ..WriteBatch::default()
        })
        .unwrap();
}

/// What each side of a session reported.
#[derive(Debug, Default)]
pub struct Events {
    /// The parent's events.
    pub parent: Vec<Event>,
    /// The child's events.
    pub child: Vec<Event>,
}

/// Runs a child and a parent session against each other, from the child's hello (which
/// also starts an anti-entropy round) until neither has anything to say.
pub fn sync_once(city: &SledStore, province: &SledStore) -> Events {
    sync_once_with(city, province, &verifier())
}

/// Like [`sync_once`], with documents checked by `verifier`.
pub fn sync_once_with(
    city: &SledStore,
    province: &SledStore,
    verifier: &DocumentVerifier,
) -> Events {
    let (c, p) = (city.identity().node, province.identity().node);
    let verifier = verifier.clone();
    let standards = Arc::new(StandardsCell::new(Standards::builtin()));
    let mut child = ChildSession::new(c, p, 100, verifier.clone(), standards.clone());
    let mut parent = ParentSession::new(p, c, standards, verifier);
    let mut queue: VecDeque<(bool, Message)> = VecDeque::new();
    let mut events = Events::default();
    let apply = |actions: Vec<Action>,
                 to_parent: bool,
                 store: &SledStore,
                 queue: &mut VecDeque<(bool, Message)>,
                 events: &mut Vec<Event>| {
        for a in actions {
            match a {
                Action::Send(m) => queue.push_back((to_parent, m)),
                Action::Commit { batch, then } => {
                    store.commit(batch).unwrap();
                    queue.extend(then.into_iter().map(|m| (to_parent, m)));
                }
                Action::Close { reason, .. } => panic!("session closed: {reason}"),
                Action::Event(e) => events.push(e),
            }
        }
    };
    apply(child.start(city), true, city, &mut queue, &mut events.child);
    let mut steps = 0;
    while let Some((to_parent, m)) = queue.pop_front() {
        steps += 1;
        assert!(steps < 1000, "the sessions do not go quiet");
        if to_parent {
            let actions = parent.handle(province, m).unwrap();
            apply(actions, false, province, &mut queue, &mut events.parent);
        } else {
            let actions = child.handle(city, m).unwrap();
            apply(actions, true, city, &mut queue, &mut events.child);
        }
    }
    events
}

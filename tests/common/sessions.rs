//! Session-level helpers: sled stores driven by the real sans-IO sessions, with the
//! messages passed in memory (no transport), for tests of what the protocol decides.

use std::collections::VecDeque;
use std::sync::Arc;

use lmsync::model::NodeCode;
use lmsync::model::ingest::IngestContext;
use lmsync::model::person::Pseudonymiser;
use lmsync::model::standards::{Standards, StandardsCell};
use lmsync::model::validate::Checker;
use lmsync::node::Planner;
use lmsync::pki::documents::DocumentVerifier;
use lmsync::protocol::{Action, ChildSession, Event, ParentSession};
use lmsync::storage::{SledStore, Store, WriteBatch, sled_options};
use lmsync::wire::messages::Message;

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
    let cx = IngestContext {
        checker: Checker {
            owner: city,
            standards: &standards,
        },
        pseudonymiser: Some(&key),
    };
    let mut planner = Planner::new(store, city);
    for v in lmsync::synth::generate(city, n, 11) {
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
    let ca = tempfile::tempdir().unwrap();
    lmsync::pki::init_ca(&ca.path().join("ca")).unwrap();
    DocumentVerifier::new(&std::fs::read_to_string(ca.path().join("ca/ca.crt")).unwrap()).unwrap()
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
    let (c, p) = (city.identity().node, province.identity().node);
    let verifier = verifier();
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

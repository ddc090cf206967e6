//! One child's anti-entropy must not stall another child's fast path. A province serves
//! two cities over real QUIC with mutual TLS on loopback, with real sled stores, on a
//! runtime with ONE async worker: if any session step read the store on that worker, a
//! long read would stall every session of the node.
//!
//! City A's records are missing at the province behind a watermark that says they are
//! there, so only anti-entropy can find them; the province's first anti-entropy read for A
//! is held (as a pass over 10⁴ differences holds it for seconds) until the test releases
//! it. While it is held, city B commits records and they must reach the province: the
//! bound is that B's fast path completes while A's anti-entropy is stalled indefinitely,
//! i.e. A's pass adds nothing to B's lag. Then A's pass is released and A converges too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lmsync::core::model::document::StoredDocument;
use lmsync::core::model::signature::DocumentVerifier;
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::model::{Kind, NodeCode, Record, RecordKey};
use lmsync::core::reconcile::{Bucket, Digest};
use lmsync::core::store::{
    LeafItem, NodeIdentity, OwnerCounts, QuarantinedRecord, Removal, ScrubCursor, Store,
    StoreError, WriteBatch,
};
use lmsync::node::clock::SystemClock;
use lmsync::node::links::Links;
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::transport::tls::{TlsFiles, TlsMaterial};
use lmsync::node::transport::{self, Socket, StorageCalls, SyncContext, SyncHandle};
use lmsync::node::write::CommitSignal;

mod common;

const DEADLINE: Duration = Duration::from_secs(60);

fn code(c: u32) -> NodeCode {
    NodeCode::new(c).unwrap()
}

/// Holds the calls that read `owner`'s reconciliation buckets until released, or until
/// [`DEADLINE`] (then it notes that it gave up: if the hold blocked the async worker, the
/// test itself could not run to release it, and must fail rather than hang).
#[derive(Default)]
struct Gate {
    released: Mutex<bool>,
    opened: Condvar,
    reached: tokio::sync::Notify,
    gave_up: AtomicBool,
}

impl Gate {
    fn hold(&self) {
        self.reached.notify_one();
        let released = self.released.lock().unwrap();
        let (_released, waited) = self
            .opened
            .wait_timeout_while(released, DEADLINE, |released| !*released)
            .unwrap();
        if waited.timed_out() {
            self.gave_up.store(true, Ordering::SeqCst);
        }
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// The province's sled store, with anti-entropy reads of one owner held at a gate.
struct HeldStore {
    inner: Arc<SledStore>,
    owner: NodeCode,
    gate: Arc<Gate>,
}

impl Store for HeldStore {
    fn identity(&self) -> &NodeIdentity {
        self.inner.identity()
    }
    fn get_record(&self, owner: NodeCode, key: RecordKey) -> Result<Option<Record>, StoreError> {
        self.inner.get_record(owner, key)
    }
    fn buckets(&self, owner: NodeCode, depth: u32, parents: &[u16]) -> Vec<Bucket> {
        if owner == self.owner {
            self.gate.hold();
        }
        self.inner.buckets(owner, depth, parents)
    }
    fn leaf_items(&self, owner: NodeCode, leaf: u16) -> Result<Vec<LeafItem>, StoreError> {
        self.inner.leaf_items(owner, leaf)
    }
    fn scrub(&self, cursor: &mut ScrubCursor, max: usize) -> Result<Vec<Removal>, StoreError> {
        self.inner.scrub(cursor, max)
    }
    fn may_contain(&self, owner: NodeCode, key: RecordKey) -> bool {
        self.inner.may_contain(owner, key)
    }
    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.inner.commit(batch)
    }
    fn digest(&self, owner: Option<NodeCode>, kind: Option<Kind>) -> Digest {
        self.inner.digest(owner, kind)
    }
    fn last_seq(&self, owner: NodeCode) -> u64 {
        self.inner.last_seq(owner)
    }
    fn owner_counts(&self) -> BTreeMap<NodeCode, OwnerCounts> {
        self.inner.owner_counts()
    }
    fn get_document(
        &self,
        kind: &str,
        issuer: NodeCode,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        self.inner.get_document(kind, issuer, id)
    }
    fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
        self.inner.documents()
    }
    fn quarantined(
        &self,
        owner: Option<NodeCode>,
        limit: usize,
    ) -> Result<Vec<QuarantinedRecord>, StoreError> {
        self.inner.quarantined(owner, limit)
    }
    fn quarantine_counts(&self) -> BTreeMap<NodeCode, u64> {
        self.inner.quarantine_counts()
    }
    fn last_received(&self, owner: NodeCode) -> Result<Option<i64>, StoreError> {
        self.inner.last_received(owner)
    }
    fn records_of(
        &self,
        owner: NodeCode,
    ) -> Box<dyn Iterator<Item = Result<Record, StoreError>> + '_> {
        self.inner.records_of(owner)
    }
    fn watermark(&self, peer: NodeCode, owner: NodeCode) -> Result<u64, StoreError> {
        self.inner.watermark(peer, owner)
    }
    fn changes(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<(u64, Vec<Record>), StoreError> {
        self.inner.changes(owner, after, upto, max)
    }
    fn size_on_disk(&self) -> u64 {
        self.inner.size_on_disk()
    }
    fn restore_pending(&self) -> Result<bool, StoreError> {
        self.inner.restore_pending()
    }
    fn peer_store_id(&self, peer: NodeCode) -> Result<Option<[u8; 16]>, StoreError> {
        self.inner.peer_store_id(peer)
    }
    fn fault(&self) -> Option<String> {
        self.inner.fault()
    }
    fn full(&self) -> bool {
        self.inner.full()
    }
}

fn new_store(dir: &Path, node: NodeCode, id: u8) -> Arc<SledStore> {
    let path = dir.join(node.to_string());
    Arc::new(SledStore::create(&path, node, [id; 16], 0, sled_options(8 << 20)).unwrap())
}

/// `city`'s offices post `n` records (as the API's writer would), ringing the signal.
fn write_records(store: &SledStore, city: NodeCode, n: usize, commits: &CommitSignal) {
    common::sessions::write_generated(store, city, n);
    commits.notify();
}

fn start_node(
    pki: &Path,
    node: NodeCode,
    store: Arc<dyn Store>,
    parent: Option<SocketAddr>,
    commits: CommitSignal,
) -> SyncHandle {
    let out = pki.join(node.to_string());
    lmsync::node::pki::issue(&pki.join("ca"), node, &out, 1).unwrap();
    let (ca, cert, key) = (
        out.join("ca.crt"),
        out.join("node.crt"),
        out.join("node.key"),
    );
    let tls = TlsMaterial::load(&TlsFiles {
        ca: &ca,
        cert: &cert,
        key: &key,
    })
    .unwrap();
    let ctx = SyncContext {
        me: node,
        store,
        standards: Arc::new(StandardsCell::new(Standards::builtin())),
        links: Arc::new(Links::default()),
        clock: Arc::new(SystemClock),
        interval: Duration::from_millis(100),
        // The handshake compares digests; no timer-driven pass during the test.
        anti_entropy: Duration::from_secs(3600),
        batch_records: 100,
        verifier: DocumentVerifier::new(&std::fs::read_to_string(&ca).unwrap()).unwrap(),
        children: None,
        storage_calls: StorageCalls::BlockingPool,
        commits,
        client_tls: std::sync::Arc::default(),
        max_protocol: lmsync::core::wire::PROTOCOL_VERSION,
    };
    let listen = Socket::Udp("127.0.0.1:0".parse().unwrap());
    let parent = parent.map(|addr| (node.parent().unwrap(), addr.to_string()));
    transport::start(listen, &tls, parent, ctx).unwrap()
}

/// Waits until `owner`'s records at `there` equal those at `here`, or fails at the deadline.
async fn converged(here: &dyn Store, there: &dyn Store, owner: NodeCode, what: &str) {
    let want = here.digest(Some(owner), None);
    let wait = async {
        while there.digest(Some(owner), None) != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("{what}: not converged within {DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn one_childs_anti_entropy_does_not_stall_another_childs_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    lmsync::node::pki::init_ca(&dir.path().join("pki/ca")).unwrap();
    let (province, a, b) = (code(440_000), code(440_100), code(440_300));

    // A's records, missing at the province behind a watermark that says they are there.
    let a_store = new_store(dir.path(), a, 1);
    let a_commits = CommitSignal::default();
    write_records(a_store.as_ref(), a, 30, &a_commits);
    let p_store = new_store(dir.path(), province, 2);
    p_store
        .commit(WriteBatch {
            watermarks: vec![(province, a, a_store.last_seq(a))],
            ..WriteBatch::default()
        })
        .unwrap();
    let gate = Arc::new(Gate::default());
    let held: Arc<dyn Store> = Arc::new(HeldStore {
        inner: p_store.clone(),
        owner: a,
        gate: gate.clone(),
    });
    let pki = dir.path().join("pki");
    let parent = start_node(&pki, province, held, None, CommitSignal::default());
    let addr = parent.quic_addr.unwrap();
    let _a = start_node(&pki, a, a_store.clone(), Some(addr), a_commits);
    tokio::time::timeout(DEADLINE, gate.reached.notified())
        .await
        .expect("A's handshake opens anti-entropy at the province");

    // While A's pass is held, B's records travel on the fast path.
    let b_store = new_store(dir.path(), b, 3);
    let b_commits = CommitSignal::default();
    let _b = start_node(&pki, b, b_store.clone(), Some(addr), b_commits.clone());
    write_records(b_store.as_ref(), b, 40, &b_commits);
    converged(
        b_store.as_ref(),
        p_store.as_ref(),
        b,
        "B while A's pass is held",
    )
    .await;
    assert!(
        !gate.gave_up.load(Ordering::SeqCst),
        "B converged only after A's held pass gave up: the hold stalled the node's async worker"
    );
    assert_ne!(
        p_store.digest(Some(a), None),
        a_store.digest(Some(a), None),
        "A's pass was still held when B converged"
    );

    gate.release();
    converged(a_store.as_ref(), p_store.as_ref(), a, "A once released").await;
}

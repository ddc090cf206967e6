//! The sans-IO sync core: the parent's and the child's side of one session.
//!
//! Feed a session the messages that arrive ([`ParentSession::handle`],
//! [`ChildSession::handle`]), the timers ([`ChildSession::on_tick`],
//! [`ChildSession::on_anti_entropy`]) and news of local commits
//! ([`ChildSession::on_commit`]); each call returns
//! the [`Action`]s the shell must carry out, in order. Nothing here does IO, reads a clock
//! or spawns: reads go through the synchronous [`Store`](crate::core::store::Store) trait,
//! writes leave as [`Action::Commit`] batches whose follow-up messages (acks) the shell
//! sends only after the batch is durable.
//!
//! Records flow up (child → parent): the child offers, per owner, how far its records are
//! complete; the parent asks for what lies beyond its own watermark; the child streams
//! bounded batches of change-log ranges; the parent applies each atomically, flushes, then
//! acknowledges. Acks carry the ministry's watermark too, so a city learns how far its
//! records have reached the top. Interrupted transfers resume from the last ack.

mod anti_entropy;
mod batching;
mod child;
mod documents;
pub mod merge;
mod parent;
mod restore;
mod upload;

pub use batching::{BATCH_BYTES, first_batch, split_by_size};
pub use child::ChildSession;
pub use parent::ParentSession;

use crate::core::model::NodeCode;
use crate::core::store::WriteBatch;
use crate::core::wire::{Message, RefusalCode};

/// Batches a child keeps unacknowledged per owner: enough to overlap the parent's commit
/// with the next transfer, few enough to bound memory.
pub const WINDOW: usize = 4;

/// What the shell must do.
#[derive(Debug)]
pub enum Action {
    /// Send a message.
    Send(Message),
    /// Make `batch` durable, then send `then` (never before).
    Commit {
        /// What to write.
        batch: WriteBatch,
        /// Messages that acknowledge it.
        then: Vec<Message>,
    },
    /// Tell the peer why and end the session; nothing of the offending message is stored.
    Close {
        /// Category.
        code: RefusalCode,
        /// Why, for both operators.
        reason: String,
    },
    /// Something an operator should see (status, metrics, logs).
    Event(Event),
}

/// Notable things that happened in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed.
    Connected {
        /// The peer.
        peer: NodeCode,
        /// The protocol version the two agreed on.
        protocol: u16,
    },
    /// The parent acknowledged `owner` through `through`; the ministry through `ministry`.
    Acknowledged {
        /// Owner.
        owner: NodeCode,
        /// At the parent.
        through: u64,
        /// At the ministry.
        ministry: u64,
    },
    /// An upload went unanswered for many ticks; the child dropped it and offered again.
    UploadRestarted {
        /// The owners whose uploads were restarted.
        owners: Vec<NodeCode>,
    },
    /// The child said how far it holds each owner's records `(owner, complete through)`:
    /// with this node's own position, the lag of the link in records.
    Offered {
        /// Per owner.
        owners: Vec<(NodeCode, u64)>,
    },
    /// Records of `owner` were stored from a child, up to `through`.
    Received {
        /// Owner.
        owner: NodeCode,
        /// Complete through this seq now.
        through: u64,
        /// Records written.
        records: usize,
    },
    /// A received record was quarantined.
    Quarantined {
        /// Owner.
        owner: NodeCode,
        /// Record id.
        id: String,
        /// Why.
        reason: String,
    },
    /// A child presented another store id than before: a restored backup, a re-initialised
    /// or a cloned node. Its records are refused until it restores from here.
    IdentityChanged {
        /// The child.
        peer: NodeCode,
        /// The store id known here.
        old: [u8; 16],
        /// The one presented.
        new: [u8; 16],
    },
    /// A verified document from above was stored.
    DocumentStored {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
        /// Issuer.
        issuer: NodeCode,
        /// Version.
        version: u64,
    },
    /// Anti-entropy stored records that were missing or older here.
    Repaired {
        /// Owner.
        owner: NodeCode,
        /// Records written.
        records: usize,
    },
    /// Two copies of one version differ: corruption or a cloned node.
    Conflict {
        /// Description.
        detail: String,
    },
    /// The parent holds more of this node's own records than this node does: its store
    /// went back (an older backup, a damaged store that lost its end). The node restores
    /// its records from the parent and refuses writes until they are back.
    BehindParent {
        /// Complete here through this seq.
        here: u64,
        /// Held at the parent through this seq.
        at_parent: u64,
    },
    /// The child has sent back every document of this node's list it holds newer (this
    /// node's own documents, after a rebuild; a province's reported ones).
    DocumentsReturned {
        /// The child.
        peer: NodeCode,
        /// Documents it sent.
        count: u32,
    },
    /// A document signed by an ancestor was not stored: its issuer may not issue that kind.
    DocumentRefused {
        /// Kind.
        kind: String,
        /// Id.
        id: String,
        /// Issuer.
        issuer: NodeCode,
        /// Why.
        reason: String,
    },
    /// A node without a parent finished rebuilding its store: `peer` returned the
    /// documents it had issued, its records come back by upload. Publishing resumes.
    RebuiltFromChildren {
        /// The child that completed it.
        peer: NodeCode,
    },
    /// A child offers fewer records than this node already holds for an owner: its store
    /// went back (restored backup, lost disk, cloned node). Nothing is overwritten.
    Regression {
        /// Owner.
        owner: NodeCode,
        /// What the child offers.
        offered: u64,
        /// What this node holds.
        held: u64,
    },
}

fn close(code: RefusalCode, reason: impl Into<String>) -> Vec<Action> {
    vec![Action::Close {
        code,
        reason: reason.into(),
    }]
}

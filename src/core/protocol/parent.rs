//! The parent's side of a session with one child: the handshake, the identity gate and
//! the dispatch of each message to its sub-protocol (`upload`, `anti_entropy`, `restore`,
//! `documents`, where both sides of each exchange sit together).

use std::sync::Arc;

use super::documents::Listed;
use super::{Action, Event, close};
use crate::core::model::NodeCode;
use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::StandardsCell;
use crate::core::store::{Store, StoreError, WriteBatch};
use crate::core::wire::{MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RefusalCode};

/// One child's session at the parent. The child's node code comes from its certificate.
pub struct ParentSession {
    pub(super) me: NodeCode,
    pub(super) child: NodeCode,
    pub(super) standards: Arc<StandardsCell>,
    pub(super) verifier: DocumentVerifier,
    pub(super) greeted: bool,
    /// A restore in progress: `(sent through, complete here)`.
    pub(super) restoring: Option<(u64, u64)>,
    /// The child's store id differs from the one it had: `(known, presented)`.
    pub(super) identity_changed: Option<([u8; 16], [u8; 16])>,
    /// This node has no parent: a store marked for restore is rebuilt from its children.
    pub(super) parentless: bool,
    /// The protocol version agreed in the handshake.
    pub(super) protocol: u16,
    /// The documents the child last said it holds (with those sent to it since).
    pub(super) child_documents: Option<Vec<Listed>>,
    /// The highest protocol version this node chooses (lower than this release's only
    /// when an operator pins it during a staged upgrade).
    pub(super) max_protocol: u16,
}

impl ParentSession {
    /// A session with the authenticated `child`; `verifier` checks the documents a
    /// province reports up.
    pub fn new(
        me: NodeCode,
        child: NodeCode,
        standards: Arc<StandardsCell>,
        verifier: DocumentVerifier,
    ) -> Self {
        ParentSession {
            me,
            child,
            standards,
            verifier,
            greeted: false,
            restoring: None,
            identity_changed: None,
            parentless: false,
            protocol: PROTOCOL_VERSION,
            child_documents: None,
            max_protocol: PROTOCOL_VERSION,
        }
    }

    /// The same session choosing protocol versions up to `max` only (clamped to what this
    /// release speaks), as an earlier release would.
    pub fn speaking_up_to(mut self, max: u16) -> Self {
        self.max_protocol = max.clamp(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION);
        self.protocol = self.max_protocol;
        self
    }

    /// The same session at a node without a parent (the ministry), whose store, when it is
    /// marked for restore, is rebuilt from its children rather than from above.
    pub fn without_parent(mut self) -> Self {
        self.parentless = true;
        self
    }

    /// The child this session serves.
    pub fn child(&self) -> NodeCode {
        self.child
    }

    /// True once the child's `Hello` has passed the handshake: a common protocol version
    /// and the code its certificate names. Until then the session may change nothing.
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// Handles one message from the child.
    pub fn handle(
        &mut self,
        store: &dyn Store,
        message: Message,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.identity_gate(&message) {
            return Ok(refusal);
        }
        match (self.greeted, message) {
            (
                false,
                Message::Hello {
                    protocol,
                    node,
                    store_id,
                },
            ) => self.hello(store, protocol, node, store_id),
            (false, other) => Ok(close(
                RefusalCode::Protocol,
                format!("expected Hello, got {}", other.name()),
            )),
            (true, Message::Offer { owners }) => self.offer(store, &owners),
            (
                true,
                Message::Batch {
                    owner,
                    from,
                    to,
                    records,
                },
            ) => self.batch(store, owner, from, to, records),
            (true, Message::Ping) => Ok(Vec::new()),
            (true, Message::Digests { owners }) => self.digests(store, &owners),
            (
                true,
                Message::Buckets {
                    owner,
                    depth,
                    parents,
                    buckets,
                },
            ) => self.buckets(store, owner, depth, &parents, &buckets),
            (
                true,
                Message::Leaves {
                    owner,
                    salt,
                    leaves,
                },
            ) => self.leaves(store, owner, salt, leaves),
            (true, Message::Repair { owner, records }) => self.repair(store, owner, records),
            (true, Message::Documents { have }) => {
                self.documents(store, &Listed::without_issuers(have))
            }
            (true, Message::DocumentsHeld { have }) => {
                self.documents(store, &Listed::with_issuers(have))
            }
            (true, Message::Document(doc)) => self.returned_document(store, doc),
            (true, Message::DocumentsReturned { count }) => self.documents_returned(store, count),
            (true, Message::Restore { owner, after }) => self.restore(store, owner, after),
            (true, Message::Ack { owner, through, .. }) => {
                self.restore_acked(store, owner, through)
            }
            (true, Message::Refuse { code, reason }) => Ok(vec![Action::Close {
                code,
                reason: format!("the child refused: {reason}"),
            }]),
            (true, other) => Ok(close(
                RefusalCode::Protocol,
                format!("a child may not send {}", other.name()),
            )),
        }
    }

    /// While a child's store identity has changed, only a restore, documents and pings
    /// are accepted from it: its records would be those of another store.
    pub(super) fn identity_gate(&self, message: &Message) -> Option<Vec<Action>> {
        let (old, new) = self.identity_changed?;
        let allowed = matches!(
            message,
            Message::Restore { .. }
                | Message::Documents { .. }
                | Message::DocumentsHeld { .. }
                | Message::Ping
                | Message::Refuse { .. }
        );
        (!allowed).then(|| {
            close(
                RefusalCode::Identity,
                format!(
                    "the store of {} changed from {} to {} (restored backup, re-initialised or cloned node?); \
                     nothing from it is accepted until it restores its records from here (`lmsync init --restore`)",
                    self.child,
                    hex::encode(old),
                    hex::encode(new)
                ),
            )
        })
    }

    pub(super) fn hello(
        &mut self,
        store: &dyn Store,
        (min, max): (u16, u16),
        node: NodeCode,
        store_id: [u8; 16],
    ) -> Result<Vec<Action>, StoreError> {
        let close = |code, reason| Ok(close(code, reason));
        // The highest version both speak: a newer child talks to an older parent and the
        // other way round.
        let chosen = max.min(self.max_protocol);
        if chosen < min.max(MIN_PROTOCOL_VERSION) {
            return close(
                RefusalCode::Version,
                format!(
                    "no common protocol version: the child speaks {min}..={max}, this node {MIN_PROTOCOL_VERSION}..={}",
                    self.max_protocol
                ),
            );
        }
        if node != self.child {
            return close(
                RefusalCode::Identity,
                format!(
                    "the certificate is for {}, the handshake says {node}",
                    self.child
                ),
            );
        }
        self.greeted = true;
        self.protocol = chosen;
        let mut actions = Vec::new();
        match store.peer_store_id(self.child)? {
            Some(known) if known != store_id => {
                self.identity_changed = Some((known, store_id));
                actions.push(Action::Event(Event::IdentityChanged {
                    peer: self.child,
                    old: known,
                    new: store_id,
                }));
            }
            Some(_) => {}
            None => actions.push(Action::Commit {
                batch: WriteBatch {
                    peer_store_ids: vec![(self.child, store_id)],
                    ..WriteBatch::default()
                },
                then: Vec::new(),
            }),
        }
        actions.push(Action::Send(Message::Welcome {
            protocol: chosen,
            node: self.me,
            store_id: store.identity().store_id,
        }));
        actions.push(Action::Event(Event::Connected {
            peer: self.child,
            protocol: chosen,
        }));
        Ok(actions)
    }

    pub(super) fn unauthorised_owner(&self, owner: NodeCode) -> Option<Vec<Action>> {
        (!owner.is_within(self.child)).then(|| {
            close(
                RefusalCode::Unauthorised,
                format!(
                    "{} may not send records of {owner}, which is outside its subtree",
                    self.child
                ),
            )
        })
    }
}

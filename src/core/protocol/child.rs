//! The child's side of a session with its parent: the handshake, the sync timer and the
//! dispatch of each message to its sub-protocol (`upload`, `anti_entropy`, `restore`,
//! `documents`, where both sides of each exchange sit together).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::documents::{Listed, documents_held};
use super::upload::Upload;
use super::{Action, Event, close};
use crate::core::model::NodeCode;
use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::StandardsCell;
use crate::core::store::{Store, StoreError};
use crate::core::wire::{MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RefusalCode};

/// Ticks an upload may go unanswered before the child offers afresh (at the default
/// 5 s interval, 5 minutes; a batch on a slow link or a busy parent is answered far
/// sooner, and a false alarm only costs a re-sent window).
const STALLED_AFTER_TICKS: u32 = 60;

/// Doublings of the sync interval while nothing changes: an idle link ticks at most 16
/// times slower (80 s at the default 5 s). Records and documents do not wait for a tick
/// (they go on commit, both ways), so an idle tick only re-confirms; backing off keeps a
/// hundred idle links from costing the network more than sled's own timers.
const MAX_QUIET_DOUBLINGS: u32 = 4;

/// The session with the parent, at the child.
pub struct ChildSession {
    pub(super) verifier: DocumentVerifier,
    pub(super) me: NodeCode,
    pub(super) parent: NodeCode,
    pub(super) batch_records: usize,
    pub(super) welcomed: bool,
    pub(super) uploads: BTreeMap<NodeCode, Upload>,
    /// Ticks since the parent last answered an upload (an ack or a want).
    pub(super) ticks_without_answer: u32,
    pub(super) standards: Arc<StandardsCell>,
    pub(super) restoring: bool,
    /// Counts anti-entropy rounds; salts the leaf fingerprints of each round.
    pub(super) anti_entropy_round: u64,
    /// The protocol version the parent chose.
    pub(super) protocol: u16,
    /// Owners offered on a commit that the parent has not answered for yet.
    pub(super) offered_unheard: BTreeSet<NodeCode>,
    /// Ticks in a row that found nothing new; sets the next tick's delay.
    pub(super) quiet_ticks: u32,
    /// Something was committed here or asked for by the parent since the last tick.
    pub(super) stirred: bool,
    /// The offer the last tick sent.
    pub(super) last_offer: Option<Message>,
    /// The highest protocol version this node offers (lower than this release's only
    /// when an operator pins it during a staged upgrade).
    pub(super) max_protocol: u16,
}

impl ChildSession {
    /// A session of `me` with `parent`, sending batches of `batch_records` records.
    pub fn new(
        me: NodeCode,
        parent: NodeCode,
        batch_records: usize,
        verifier: DocumentVerifier,
        standards: Arc<StandardsCell>,
    ) -> Self {
        ChildSession {
            verifier,
            me,
            parent,
            batch_records: batch_records.max(1),
            welcomed: false,
            uploads: BTreeMap::new(),
            ticks_without_answer: 0,
            standards,
            restoring: false,
            anti_entropy_round: 0,
            protocol: PROTOCOL_VERSION,
            offered_unheard: BTreeSet::new(),
            quiet_ticks: 0,
            stirred: false,
            last_offer: None,
            max_protocol: PROTOCOL_VERSION,
        }
    }

    /// The same session offering protocol versions up to `max` only (clamped to what this
    /// release speaks), as an earlier release would.
    pub fn speaking_up_to(mut self, max: u16) -> Self {
        self.max_protocol = max.clamp(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION);
        self.protocol = self.max_protocol;
        self
    }

    /// The longest an idle link waits between ticks, for a configured sync `interval`: a
    /// healthy link exchanges an offer and its answer at least this often.
    pub fn longest_tick_delay(interval: std::time::Duration) -> std::time::Duration {
        interval.saturating_mul(1 << MAX_QUIET_DOUBLINGS)
    }

    /// How long after a tick the next one is due, for a configured sync `interval`: the
    /// interval itself, doubled for each tick in a row that found nothing new, up to
    /// [`MAX_QUIET_DOUBLINGS`] times.
    pub fn tick_delay(&self, interval: std::time::Duration) -> std::time::Duration {
        interval.saturating_mul(1 << self.quiet_ticks.min(MAX_QUIET_DOUBLINGS))
    }

    /// The opening message.
    pub fn start(&self, store: &dyn Store) -> Vec<Action> {
        vec![Action::Send(Message::Hello {
            protocol: (MIN_PROTOCOL_VERSION, self.max_protocol),
            node: self.me,
            store_id: store.identity().store_id,
        })]
    }

    /// Handles one message from the parent.
    pub fn handle(
        &mut self,
        store: &dyn Store,
        message: Message,
    ) -> Result<Vec<Action>, StoreError> {
        match (self.welcomed, message) {
            (false, Message::Welcome { protocol, node, .. }) => self.welcome(store, protocol, node),
            (_, Message::Refuse { code, reason }) => Ok(vec![Action::Close {
                code,
                reason: format!("the parent refused: {reason}"),
            }]),
            (false, other) => Ok(close(
                RefusalCode::Protocol,
                format!("expected Welcome, got {}", other.name()),
            )),
            (true, Message::Want { owner, after }) => self.want(store, owner, after),
            (
                true,
                Message::Ack {
                    owner,
                    through,
                    ministry,
                },
            ) => self.ack(store, owner, through, ministry),
            (true, Message::Ping) => Ok(Vec::new()),
            (true, Message::Document(doc)) => self.document(store, doc),
            (true, Message::Documents { have }) => {
                self.parent_lists_documents(store, &Listed::without_issuers(have))
            }
            (true, Message::DocumentsHeld { have }) => {
                self.parent_lists_documents(store, &Listed::with_issuers(have))
            }
            (
                true,
                Message::Batch {
                    owner,
                    from,
                    to,
                    records,
                },
            ) if self.restoring && owner == self.me => self.restore_batch(store, from, to, records),
            (true, Message::Restored { owner, through }) if self.restoring && owner == self.me => {
                self.restored(store, through)
            }
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
                Message::Fetch {
                    owner,
                    salt,
                    leaves,
                },
            ) => self.fetch(store, owner, salt, &leaves),
            (true, Message::Repair { owner, records }) if owner == self.me => {
                self.repaired_down(store, records)
            }
            (true, other) => Ok(close(
                RefusalCode::Protocol,
                format!("a parent may not send {}", other.name()),
            )),
        }
    }

    fn welcome(
        &mut self,
        store: &dyn Store,
        protocol: u16,
        node: NodeCode,
    ) -> Result<Vec<Action>, StoreError> {
        if !(MIN_PROTOCOL_VERSION..=self.max_protocol).contains(&protocol) {
            return Ok(close(
                RefusalCode::Version,
                format!(
                    "the parent chose protocol {protocol}, this node speaks {MIN_PROTOCOL_VERSION}..={}",
                    self.max_protocol
                ),
            ));
        }
        if node != self.parent {
            return Ok(close(
                RefusalCode::Identity,
                format!("expected parent {}, it says it is {node}", self.parent),
            ));
        }
        self.welcomed = true;
        self.protocol = protocol;
        if store.restore_pending()? {
            // Nothing is offered until the node's own records are back: an empty store
            // must never look like the truth to the parent.
            self.restoring = true;
            let after = store.last_seq(self.me);
            return Ok(vec![
                Action::Event(Event::Connected {
                    peer: self.parent,
                    protocol,
                }),
                Action::Send(Message::Restore {
                    owner: self.me,
                    after,
                }),
            ]);
        }
        Ok(vec![
            Action::Event(Event::Connected {
                peer: self.parent,
                protocol,
            }),
            Action::Send(self.offer(store)?),
            Action::Send(self.digests(store)?),
            Action::Send(documents_held(store, self.protocol)?),
        ])
    }

    /// Records were committed here: send them now rather than on the next tick. An owner
    /// the parent has answered for streams on from where its upload stands; an owner it
    /// has not heard of yet is offered (once, until the parent answers or the tick offers
    /// everything again).
    pub fn on_commit(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        if !self.welcomed || self.restoring {
            return Ok(Vec::new());
        }
        self.stirred = true;
        let mut actions = Vec::new();
        let mut unheard = Vec::new();
        for owner in store.owner_counts().into_keys() {
            if self.uploads.contains_key(&owner) {
                actions.extend(self.fill_window(store, owner)?);
            } else if !self.offered_unheard.contains(&owner) {
                let complete = store.complete_through(owner)?;
                if complete > 0 {
                    unheard.push((owner, complete));
                }
            }
        }
        if !unheard.is_empty() {
            self.offered_unheard
                .extend(unheard.iter().map(|(owner, _)| *owner));
            actions.push(Action::Send(Message::Offer { owners: unheard }));
        }
        Ok(actions)
    }

    /// The sync timer fired: offer what is new (the parent asks for what it lacks).
    pub fn on_tick(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        // While an upload is under way its acks drive it; a new offer would only make the
        // parent ask again for what is already in flight.
        let uploading = self
            .uploads
            .values()
            .any(|u| u.unacked > 0 || u.sent < u.upto);
        if !self.welcomed || self.restoring {
            return Ok(Vec::new());
        }
        let offer = self.offer(store)?;
        let quiet = !uploading && !self.stirred && self.last_offer.as_ref() == Some(&offer);
        self.quiet_ticks = if quiet {
            self.quiet_ticks.saturating_add(1)
        } else {
            0
        };
        self.stirred = false;
        let mut actions = Vec::new();
        if uploading {
            self.ticks_without_answer += 1;
            if self.ticks_without_answer < STALLED_AFTER_TICKS {
                return Ok(actions);
            }
            // Safety net: an upload the parent stopped answering would otherwise wait
            // forever (and anti-entropy leaves owners on the fast path to it). Offering
            // again is idempotent: the parent answers from its durable watermark.
            let owners: Vec<NodeCode> = self.uploads.keys().copied().collect();
            actions.push(Action::Event(Event::UploadRestarted { owners }));
            self.uploads.clear();
        }
        self.ticks_without_answer = 0;
        self.offered_unheard.clear();
        self.last_offer = Some(offer.clone());
        actions.push(Action::Send(offer));
        actions.push(Action::Send(documents_held(store, self.protocol)?));
        Ok(actions)
    }

    /// Documents were committed here (from the parent, or published by this node): list
    /// them to the parent now, so that one this node reports up (a province's pilot
    /// designations and targets) goes up without waiting for a tick.
    pub fn on_documents_committed(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        if !self.welcomed || self.restoring {
            return Ok(Vec::new());
        }
        Ok(vec![Action::Send(documents_held(store, self.protocol)?)])
    }
}

//! Documents: signed standards and policies flow down, verified at every hop; a province's
//! pilot designations and targets, and each city's key epoch notices, are reported up; and
//! a node whose store was rebuilt gets its own documents back from its children.

//!
//! A document is identified by kind, issuer and id: two issuers' documents with the same
//! kind and id are two documents, so an id can never be squatted. Which tier may issue
//! which kind ([`authority`]) is checked on every hop; a document that breaks the rule is
//! not stored and is reported, and the session goes on.

use super::child::ChildSession;
use super::parent::ParentSession;
use super::{Action, Event, close};
use crate::core::model::NodeCode;
use crate::core::model::document::{HeldDocument, StoredDocument};
use crate::core::model::document::{KEY_EPOCH, authority, issued_above, may_publish, travels_up};
use crate::core::model::key_epoch;
use crate::core::store::{Store, StoreError, WriteBatch};
use crate::core::wire::{Message, RefusalCode};

/// The first protocol version whose document lists name issuers.
const ISSUERS_LISTED: u16 = 3;

/// One entry of a peer's document list. A version-2 peer lists no issuer: its entry then
/// stands for the document of that kind and id by whichever issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    kind: String,
    issuer: Option<NodeCode>,
    id: String,
    version: u64,
}

impl Listed {
    /// A version-2 list.
    pub(super) fn without_issuers(have: Vec<(String, String, u64)>) -> Vec<Listed> {
        have.into_iter()
            .map(|(kind, id, version)| Listed {
                kind,
                issuer: None,
                id,
                version,
            })
            .collect()
    }

    /// A version-3 list.
    pub(super) fn with_issuers(have: Vec<HeldDocument>) -> Vec<Listed> {
        have.into_iter()
            .map(|h| Listed {
                kind: h.kind,
                issuer: Some(h.issuer),
                id: h.id,
                version: h.version,
            })
            .collect()
    }

    fn names(&self, doc: &StoredDocument) -> bool {
        self.kind == doc.kind && self.id == doc.id && self.issuer.is_none_or(|i| i == doc.issuer)
    }
}

/// `docs` as a document list in the session's protocol `version`.
fn list_message<'a>(version: u16, docs: impl Iterator<Item = &'a StoredDocument>) -> Message {
    if version >= ISSUERS_LISTED {
        Message::DocumentsHeld {
            have: docs.map(HeldDocument::of).collect(),
        }
    } else {
        Message::Documents {
            have: docs
                .map(|d| (d.kind.clone(), d.id.clone(), d.version))
                .collect(),
        }
    }
}

/// The documents this node holds, as the parent needs to know them.
pub(super) fn documents_held(store: &dyn Store, version: u16) -> Result<Message, StoreError> {
    Ok(list_message(version, store.documents()?.iter()))
}

impl ParentSession {
    /// Sends the child every document issued above it that it lacks or holds older, and
    /// lists what the child may give back: the documents this node issued (a rebuilt store
    /// gets them back from its children) and, from a province, those it reported up.
    pub(super) fn documents(
        &mut self,
        store: &dyn Store,
        have: &[Listed],
    ) -> Result<Vec<Action>, StoreError> {
        self.child_documents = Some(have.to_vec());
        let held = store.documents()?;
        let (me, child) = (self.me, self.child);
        let returnable = held.iter().filter(|d| {
            d.issuer == me || (d.issuer == child && may_publish(child)) || travels_up(d, child)
        });
        let mut actions = vec![Action::Send(list_message(self.protocol, returnable))];
        actions.extend(newer_documents(held, have, |doc| {
            issued_above(doc.issuer, child)
        }));
        Ok(actions)
    }

    /// Documents were committed here: send the child, now, each one issued above it that
    /// it lacks by the list it last gave. Before the child has listed its documents there
    /// is nothing to compare with, and its list will be answered in full anyway.
    pub fn on_documents_committed(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        let Some(listed) = self.child_documents.as_mut() else {
            return Ok(Vec::new());
        };
        let child = self.child;
        let actions = newer_documents(store.documents()?, listed, |doc| {
            issued_above(doc.issuer, child)
        });
        // What was sent counts as held: a later commit does not send it again.
        listed.extend(actions.iter().filter_map(|a| match a {
            Action::Send(Message::Document(doc)) => Some(Listed {
                kind: doc.kind.clone(),
                issuer: Some(doc.issuer),
                id: doc.id.clone(),
                version: doc.version,
            }),
            _ => None,
        }));
        Ok(actions)
    }

    /// A document from the child, answering this node's list: one the child issued and
    /// reports up (pilot designations, targets), or one this node issued and lacks or
    /// holds older (its store was rebuilt or went back). Stored only if it is one of
    /// these, its signature verifies, and it is newer than the one held.
    pub(super) fn returned_document(
        &mut self,
        store: &dyn Store,
        doc: StoredDocument,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(reason) = self.refusal_of_returned(&doc) {
            return Ok(close(RefusalCode::Unauthorised, reason));
        }
        let held = store.get_document(&doc.kind, doc.issuer, &doc.id)?;
        match held {
            Some(h) if h.version >= doc.version => Ok(Vec::new()),
            Some(h) if doc.issuer == self.me => {
                // This node published an older version after its store went back: the
                // newer one its children hold wins everywhere, so the operator must
                // publish again to supersede it.
                let mut actions = vec![Action::Event(Event::Conflict {
                    detail: format!(
                        "{} returned version {} of this node's document {}/{}, newer than the \
                         version {} held here (the store went back): the returned one is in \
                         force; publish again to change it",
                        self.child, doc.version, doc.kind, doc.id, h.version
                    ),
                })];
                actions.extend(store_document(doc));
                Ok(actions)
            }
            _ => Ok(store_document(doc)),
        }
    }

    /// Why the child may not send `doc`, if it may not: a document from below must be
    /// one that travels up from that child (a key epoch notice only from the city it
    /// names, or the province above it), within its issuer's authority, and signed.
    pub(super) fn refusal_of_returned(&self, doc: &StoredDocument) -> Option<String> {
        if doc.issuer != self.me && !travels_up(doc, self.child) {
            let own = doc.issuer == self.child && may_publish(self.child);
            return Some(if own {
                format!("{} documents are not reported up", doc.kind)
            } else {
                format!(
                    "{} may not send a document issued by {}",
                    self.child, doc.issuer
                )
            });
        }
        if let Err(reason) = authority(&doc.kind, doc.issuer) {
            return Some(reason);
        }
        if doc.kind == KEY_EPOCH
            && let Err(reason) = key_epoch::parse(doc)
        {
            return Some(reason);
        }
        self.verifier.verify(doc).err()
    }
    /// The child has sent back every document of this node's list it holds newer. A
    /// node without a parent whose store is being rebuilt takes its records from its
    /// children's uploads and its own documents from these returns, so once a child has
    /// returned them the rebuild is done and publishing resumes. Every child returns them
    /// on each connection: one that holds a newer version later still brings it back (a
    /// conflict, if this node published meanwhile).
    pub(super) fn documents_returned(
        &mut self,
        store: &dyn Store,
        count: u32,
    ) -> Result<Vec<Action>, StoreError> {
        let mut actions = vec![Action::Event(Event::DocumentsReturned {
            peer: self.child,
            count,
        })];
        if self.parentless && store.restore_pending()? {
            actions.push(Action::Commit {
                batch: WriteBatch {
                    restore_pending: Some(false),
                    ..WriteBatch::default()
                },
                then: Vec::new(),
            });
            actions.push(Action::Event(Event::RebuiltFromChildren {
                peer: self.child,
            }));
        }
        Ok(actions)
    }
}

impl ChildSession {
    /// A document from above: store it only if an ancestor issued and signed it.
    pub(super) fn document(
        &mut self,
        store: &dyn Store,
        doc: StoredDocument,
    ) -> Result<Vec<Action>, StoreError> {
        if !issued_above(doc.issuer, self.me) {
            return Ok(close(
                RefusalCode::Unauthorised,
                format!("{} may not issue documents to {}", doc.issuer, self.me),
            ));
        }
        if let Err(reason) = self.verifier.verify(&doc) {
            return Ok(close(RefusalCode::Unauthorised, reason));
        }
        if let Err(reason) = authority(&doc.kind, doc.issuer) {
            // Signed by an ancestor but outside its authority (a province's classification
            // version): not stored, reported, and the records behind it keep flowing.
            return Ok(vec![Action::Event(Event::DocumentRefused {
                kind: doc.kind,
                id: doc.id,
                issuer: doc.issuer,
                reason,
            })]);
        }
        let held = store
            .get_document(&doc.kind, doc.issuer, &doc.id)?
            .map_or(0, |d| d.version);
        if doc.version <= held {
            return Ok(Vec::new());
        }
        Ok(store_document(doc))
    }

    /// The parent lists the documents it issued and those this node reported up: send
    /// back each of them held newer here (the parent's store was rebuilt or went back; a
    /// report not yet up), then say that is all.
    pub(super) fn parent_lists_documents(
        &mut self,
        store: &dyn Store,
        at_parent: &[Listed],
    ) -> Result<Vec<Action>, StoreError> {
        let (me, parent) = (self.me, self.parent);
        let mut actions = newer_documents(store.documents()?, at_parent, |doc| {
            doc.issuer == parent || travels_up(doc, me)
        });
        let count = u32::try_from(actions.len()).unwrap_or(u32::MAX);
        actions.push(Action::Send(Message::DocumentsReturned { count }));
        Ok(actions)
    }
}

/// Stores a verified, newer document and reports it.
pub(super) fn store_document(doc: StoredDocument) -> Vec<Action> {
    let event = Event::DocumentStored {
        kind: doc.kind.clone(),
        id: doc.id.clone(),
        issuer: doc.issuer,
        version: doc.version,
    };
    vec![
        Action::Commit {
            batch: WriteBatch {
                documents: vec![doc],
                ..WriteBatch::default()
            },
            then: Vec::new(),
        },
        Action::Event(event),
    ]
}

/// `Document` messages for each of `docs` that `wanted` keeps and the peer lacks or holds
/// older, by its list `theirs`.
fn newer_documents(
    docs: impl IntoIterator<Item = StoredDocument>,
    theirs: &[Listed],
    wanted: impl Fn(&StoredDocument) -> bool,
) -> Vec<Action> {
    docs.into_iter()
        .filter(|doc| wanted(doc))
        .filter(|doc| {
            let held = theirs
                .iter()
                .filter(|l| l.names(doc))
                .map(|l| l.version)
                .max()
                .unwrap_or(0);
            doc.version > held
        })
        .map(|doc| Action::Send(Message::Document(doc)))
        .collect()
}

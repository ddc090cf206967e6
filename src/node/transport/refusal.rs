//! Refused handshakes: a TLS alert from either side (an expired, not-yet-valid, revoked or
//! foreign certificate) told apart from a link that merely broke, with what an operator
//! should do about it.
//!
//! A refusal is not cured by retrying soon, so the dial loop backs off to minutes and says
//! so once, loudly; a broken link is retried at once.

use std::time::Duration;

use quinn::ConnectionError;
use quinn_proto::TransportErrorCode;

/// How long a refused child waits at most between attempts.
pub const REFUSED_BACKOFF_MAX: Duration = Duration::from_secs(10 * 60);

/// Which TLS alert refused the handshake (RFC 8446 §6.2), as far as an operator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    /// `certificate_expired`: expired or not yet valid.
    Expired,
    /// `certificate_revoked`.
    Revoked,
    /// `unknown_ca`, or `decrypt_error` on a certificate whose signature does not verify
    /// (another CA under the same name): not issued by the network CA, or the CA files
    /// differ.
    UnknownCa,
    /// `bad_certificate`, `certificate_unknown`, `unsupported_certificate`,
    /// `certificate_required`: the certificate itself is unacceptable.
    BadCertificate,
    /// Any other alert (`handshake_failure`, `no_application_protocol`, …).
    Other(u8),
}

impl Alert {
    fn from_code(code: u8) -> Alert {
        match code {
            45 => Alert::Expired,
            44 => Alert::Revoked,
            48 | 51 => Alert::UnknownCa,
            42 | 43 | 46 | 116 => Alert::BadCertificate,
            other => Alert::Other(other),
        }
    }
}

/// A handshake refused by a TLS alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The peer refused this node's certificate (false: this node refused the peer's).
    pub by_peer: bool,
    /// The alert.
    pub alert: Alert,
    /// What quinn and rustls said.
    pub detail: String,
}

/// The QUIC error codes that carry a TLS alert (RFC 9001 §4.8).
const CRYPTO_ERRORS: std::ops::RangeInclusive<u64> = 0x100..=0x1ff;

impl Refusal {
    /// The refusal in `error`, if it is one.
    pub fn of(error: &ConnectionError) -> Option<Refusal> {
        let (code, by_peer, detail) = match error {
            ConnectionError::ConnectionClosed(close) => (
                close.error_code,
                true,
                String::from_utf8_lossy(&close.reason).into_owned(),
            ),
            ConnectionError::TransportError(e) => (e.code, false, e.reason.clone()),
            _ => return None,
        };
        let alert = crypto_alert(code)?;
        Some(Refusal {
            by_peer,
            alert: Alert::from_code(alert),
            detail,
        })
    }

    /// One sentence: who refused what, and what to do.
    pub fn advice(&self) -> &'static str {
        match (self.by_peer, self.alert) {
            (true, Alert::Expired) => {
                "the parent refused this node's certificate as expired or not yet valid: \
                 check this machine's clock, then issue a new certificate at the network CA \
                 (`lmsync pki issue`) and restart the node"
            }
            (true, Alert::Revoked) => {
                "the parent refused this node's certificate as revoked: ask the network CA \
                 for a new one"
            }
            (true, Alert::UnknownCa) => {
                "the parent does not know this node's CA: the certificate was issued by \
                 another CA, or the network's ca.crt differs; issue it from the network CA"
            }
            (false, Alert::Expired) => {
                "the parent's certificate is expired or not yet valid: check this machine's \
                 clock, or ask the parent's operator to renew it"
            }
            (false, Alert::UnknownCa) => {
                "the parent's certificate is not from this node's CA: check tls.ca in the \
                 config and the parent's address"
            }
            (false, Alert::Revoked) => {
                "the parent's certificate is revoked: ask the parent's operator to renew it"
            }
            (true, _) => {
                "the parent refused the handshake: check this node's certificate, key and \
                 CA files against the network CA"
            }
            (false, _) => {
                "this node refused the parent's certificate: check tls.ca in the config and \
                 the parent's address"
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.by_peer {
            "refused by the peer"
        } else {
            "refused here"
        };
        write!(f, "TLS handshake {who} ({:?}): {}", self.alert, self.detail)
    }
}

/// The TLS alert a QUIC error code carries, if it carries one.
fn crypto_alert(code: TransportErrorCode) -> Option<u8> {
    let code = u64::from(code);
    if CRYPTO_ERRORS.contains(&code) {
        u8::try_from(code - CRYPTO_ERRORS.start()).ok()
    } else {
        None
    }
}

/// What the dial loop waits before the next attempt, and how the wait grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backoff {
    wait: Duration,
}

/// The first wait, and the wait after a link that worked and then broke.
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// Longest wait while the parent is unreachable.
const UNREACHABLE_MAX: Duration = Duration::from_secs(30);

/// How an attempt to hold a session with the parent ended, as far as waiting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The session ran and ended cleanly, or broke after it was established.
    Broke,
    /// The parent could not be reached or did not answer in time.
    Unreachable,
    /// The handshake or the session was refused: retrying soon cannot help.
    Refused,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { wait: FIRST_WAIT }
    }
}

impl Backoff {
    /// The wait before the next attempt after `outcome`; it doubles while attempts keep
    /// failing, to 30 s while the parent is unreachable and to [`REFUSED_BACKOFF_MAX`]
    /// while it refuses.
    pub(super) fn next(&mut self, outcome: Outcome) -> Duration {
        let cap = match outcome {
            Outcome::Broke => {
                self.wait = FIRST_WAIT;
                return FIRST_WAIT;
            }
            Outcome::Unreachable => UNREACHABLE_MAX,
            Outcome::Refused => REFUSED_BACKOFF_MAX,
        };
        let wait = self.wait.min(cap);
        self.wait = (wait * 2).min(cap);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crypto_close_from_the_peer_is_a_refusal_with_its_alert() {
        let close = quinn_proto::ConnectionClose {
            error_code: TransportErrorCode::crypto(45),
            frame_type: None,
            reason: b"invalid peer certificate: Expired".to_vec().into(),
        };
        let refusal = Refusal::of(&ConnectionError::ConnectionClosed(close)).unwrap();
        assert_eq!(refusal.alert, Alert::Expired);
        assert!(refusal.by_peer);
        assert!(refusal.advice().contains("lmsync pki issue"));
        assert_eq!(Refusal::of(&ConnectionError::TimedOut), None);
        assert_eq!(Refusal::of(&ConnectionError::Reset), None);
    }

    #[test]
    fn refusals_back_off_to_minutes_and_a_broken_link_retries_at_once() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..20).map(|_| b.next(Outcome::Refused)).collect();
        assert_eq!(waits[0], FIRST_WAIT);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*waits.last().unwrap(), REFUSED_BACKOFF_MAX);
        assert_eq!(b.next(Outcome::Broke), FIRST_WAIT);
        let unreachable: Vec<Duration> = (0..20).map(|_| b.next(Outcome::Unreachable)).collect();
        assert_eq!(*unreachable.last().unwrap(), UNREACHABLE_MAX);
    }
}

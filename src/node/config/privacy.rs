//! `[privacy]`: the city's pseudonym key and its epoch, and the previous key kept during a
//! rotation's overlap.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::ConfigError;

/// `[privacy]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawPrivacy {
    pub pid_key_file: PathBuf,
    #[serde(default = "default_epoch")]
    pub pid_epoch: u16,
    /// When the epoch took effect (`YYYY-MM-DD`); the start of the quarter the node starts
    /// in when absent.
    #[serde(default)]
    pub pid_epoch_valid_from: Option<String>,
    /// The previous epoch's key, kept for the overlap after a rotation.
    #[serde(default)]
    pub previous_pid_key_file: Option<PathBuf>,
    /// The previous key's epoch.
    #[serde(default)]
    pub previous_pid_epoch: Option<u16>,
}

fn default_epoch() -> u16 {
    1
}

/// `[privacy]`, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    /// The pseudonym key file.
    pub key_file: PathBuf,
    /// Its epoch.
    pub epoch: u16,
    /// When the epoch took effect, if configured.
    pub valid_from: Option<NaiveDate>,
    /// The previous key file and its epoch, during an overlap.
    pub previous: Option<(PathBuf, u16)>,
}

/// Checks `[privacy]`; relative paths are resolved by `resolve`.
pub(super) fn privacy(
    raw: &RawPrivacy,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Privacy, ConfigError> {
    let valid_from = raw
        .pid_epoch_valid_from
        .as_deref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                ConfigError::at(
                    "privacy.pid_epoch_valid_from",
                    format!("expected a date as YYYY-MM-DD, got {d:?}"),
                )
            })
        })
        .transpose()?;
    let previous = match (&raw.previous_pid_key_file, raw.previous_pid_epoch) {
        (None, None) => None,
        (Some(file), Some(epoch)) if epoch < raw.pid_epoch => Some((resolve(file), epoch)),
        (Some(_), Some(epoch)) => {
            return Err(ConfigError::at(
                "privacy.previous_pid_epoch",
                format!(
                    "the previous epoch {epoch} must be lower than pid_epoch {}",
                    raw.pid_epoch
                ),
            ));
        }
        (Some(_), None) => {
            return Err(ConfigError::at(
                "privacy.previous_pid_epoch",
                "previous_pid_key_file needs previous_pid_epoch",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::at(
                "privacy.previous_pid_key_file",
                "previous_pid_epoch needs previous_pid_key_file",
            ));
        }
    };
    Ok(Privacy {
        key_file: resolve(&raw.pid_key_file),
        epoch: raw.pid_epoch,
        valid_from,
        previous,
    })
}

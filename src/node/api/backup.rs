//! `POST /v1/backup`: streams the store as it was when the request arrived (the cut), for
//! `lmsync backup` to write into a backup directory. Needs the token. One backup at a time
//! (409 `backup_running`); commits go on while it streams. The stream is produced on a
//! thread of its own, a bounded number of frames ahead of the client: a client that reads
//! slowly slows the backup, not the node, and one that goes away ends it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use super::{AppState, require_token};
use crate::node::storage::backup::{BackupError, produce};

/// Frames a backup may run ahead of its client.
const FRAMES_AHEAD: usize = 4;

/// The media type of a backup stream.
pub(super) const BACKUP_MEDIA_TYPE: &str = "application/vnd.lmsync.backup";

/// Starts a backup and answers with its stream.
pub(super) async fn backup(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_token(&app, &headers)?;
    let store = app.backups.clone();
    let now_ms = app.clock.now_ms();
    let (frames, body) = mpsc::channel::<Bytes>(FRAMES_AHEAD);
    let (started, begun) = oneshot::channel::<Result<(), BackupError>>();
    std::thread::Builder::new()
        .name("backup".into())
        .spawn(move || {
            let run = match produce::begin(&store) {
                Ok(run) => run,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            tracing::info!(cut_batch = run.1.batch, "Backup started");
            if started.send(Ok(())).is_err() {
                return;
            }
            let mut send = |bytes: Vec<u8>| {
                frames
                    .blocking_send(Bytes::from(bytes))
                    .map_err(|_| BackupError::Failed("the client went away".into()))
            };
            match produce::stream(&store, run, now_ms, &mut send) {
                Ok(end) => tracing::info!(
                    records = end.records,
                    documents = end.documents,
                    "Backup streamed"
                ),
                Err(e) => tracing::warn!(error = %e, "Backup not finished"),
            }
        })
        .map_err(ApiError::internal)?;
    match begun.await {
        Ok(Ok(())) => {}
        Ok(Err(BackupError::Busy)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "backup_running",
                BackupError::Busy.to_string(),
            ));
        }
        Ok(Err(BackupError::Store(e))) => return Err(e.into()),
        Ok(Err(e)) => return Err(ApiError::internal(e)),
        Err(e) => return Err(ApiError::internal(e)),
    }
    Ok(super::stream::streamed(body, BACKUP_MEDIA_TYPE))
}

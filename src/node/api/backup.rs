//! `POST /v1/backup`: streams the store as it was when the request arrived (the cut), for
//! `lmsync backup` to write into a backup directory. Needs the token. One backup at a time
//! (409 `backup_running`); commits go on while it streams. The stream is produced on a
//! thread of its own, a bounded number of frames ahead of the client: a client that reads
//! slowly slows the backup, not the node, and one that goes away ends it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
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
    let mut response = Body::new(Frames(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(BACKUP_MEDIA_TYPE),
    );
    Ok(response)
}

/// The frames of a backup as a response body.
struct Frames(mpsc::Receiver<Bytes>);

impl HttpBody for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
    }
}

//! Frames on the session's stream: a checked length prefix and one encoded message, read
//! within a deadline once started, and read by a task of their own so that a timer never
//! cuts one in half.

use std::time::Duration;

use quinn::{RecvStream, SendStream};

use super::TransportError;
use crate::core::wire::{self, Message};

/// How long a peer may take to finish a frame once its first byte arrived: an 8 MiB
/// frame at about 600 kbit/s. A peer trickling bytes (a slowloris) is cut off here.
pub(super) const FRAME_DEADLINE: Duration = Duration::from_secs(120);

/// Reads one frame: a checked length prefix, then exactly that many bytes. Waiting for
/// the next frame has no limit (QUIC keep-alives and the idle timeout watch the link);
/// finishing one does ([`FRAME_DEADLINE`]).
pub(super) async fn read_frame(recv: &mut RecvStream) -> Result<Option<Message>, TransportError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix[..1]).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(TransportError::Connection(e.to_string())),
    }
    let rest = async {
        recv.read_exact(&mut prefix[1..])
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        let len = wire::frame_len(prefix)?;
        let mut body = vec![0u8; len];
        recv.read_exact(&mut body)
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        Ok::<_, TransportError>(body)
    };
    let body = tokio::time::timeout(FRAME_DEADLINE, rest)
        .await
        .map_err(|_| TransportError::Stalled(FRAME_DEADLINE))??;
    Ok(Some(wire::decode_body(&body)?))
}

pub(super) async fn write_frame(
    send: &mut SendStream,
    message: &Message,
) -> Result<(), TransportError> {
    let frame = wire::encode_frame(message).map_err(|e| TransportError::Frame(e.into()))?;
    send.write_all(&frame)
        .await
        .map_err(|e| TransportError::Connection(e.to_string()))
}

/// Frames read by a task of their own. Reading a frame takes several awaits; inside a
/// `select!` a timer firing half-way would drop the bytes already read and break the
/// framing, so the read runs to completion elsewhere and hands over whole messages.
pub(super) struct FrameReader {
    frames: tokio::sync::mpsc::Receiver<Result<Option<Message>, TransportError>>,
    task: tokio::task::JoinHandle<()>,
}

impl FrameReader {
    pub(super) fn spawn(mut recv: RecvStream) -> FrameReader {
        // Two frames in hand at most: the stream's flow control does the rest.
        let (tx, frames) = tokio::sync::mpsc::channel(2);
        let task = tokio::spawn(async move {
            loop {
                let frame = read_frame(&mut recv).await;
                let last = !matches!(frame, Ok(Some(_)));
                if tx.send(frame).await.is_err() || last {
                    return;
                }
            }
        });
        FrameReader { frames, task }
    }

    /// The next frame; `Ok(None)` when the peer finished the stream. Cancel-safe.
    pub(super) async fn next(&mut self) -> Result<Option<Message>, TransportError> {
        self.frames.recv().await.unwrap_or(Ok(None))
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

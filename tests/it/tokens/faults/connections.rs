//! Connections reset or closed early by a raw token endpoint on a bare `TcpListener`.

use super::*;

/// What a raw token endpoint does with the next request it reads.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// Resets the connection (RST, `SO_LINGER` 0) without answering.
    ResetBeforeAnswer,
    /// Sends the headers and part of the body, then resets the connection.
    ResetMidBody,
    /// Sends the headers and part of the body (of a longer `Content-Length`), then closes the
    /// connection cleanly (FIN).
    CloseMidBody,
    /// Answers like Akool's getToken.
    Token,
}

/// An Akool-shaped token endpoint on a bare `TcpListener`, for faults an HTTP server will not
/// commit: resets and early closes at chosen points. One request per connection.
struct RawEndpoint {
    base_url: String,
    requests: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<Raw>>>,
}

impl RawEndpoint {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (counter, answers) = (Arc::clone(&requests), Arc::clone(&script));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, answers) = (Arc::clone(&counter), Arc::clone(&answers));
                tokio::spawn(async move {
                    let _ = Self::serve(stream, counter, answers).await;
                });
            }
        });
        Self {
            base_url,
            requests,
            script,
        }
    }

    fn then(&self, answer: Raw) {
        self.script.lock().unwrap().push_back(answer);
    }

    fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn serve(
        mut stream: TcpStream,
        requests: Arc<AtomicUsize>,
        script: Arc<Mutex<VecDeque<Raw>>>,
    ) -> io::Result<()> {
        read_request(&mut stream).await?;
        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = script.lock().unwrap().pop_front().unwrap_or(Raw::Token);
        const HEAD: &str =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n";
        const PARTIAL: &str = r#"{"code": 1000, "token": "raw-tok"#;
        match answer {
            Raw::ResetBeforeAnswer => stream.set_zero_linger()?,
            Raw::ResetMidBody => {
                stream.write_all(HEAD.as_bytes()).await?;
                stream.write_all(PARTIAL.as_bytes()).await?;
                stream.flush().await?;
                stream.set_zero_linger()?;
            }
            Raw::CloseMidBody => {
                stream.write_all(HEAD.as_bytes()).await?;
                stream.write_all(PARTIAL.as_bytes()).await?;
                stream.shutdown().await?;
            }
            Raw::Token => {
                let body = format!(r#"{{"code": 1000, "token": "raw-token-{n}"}}"#);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await?;
            }
        }
        Ok(())
    }
}

/// Reads one request: its head, then as many body bytes as its `Content-Length` says.
async fn read_request(stream: &mut TcpStream) -> io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap_or(0));
    while buf.len() < head_end + length {
        let mut chunk = [0; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Connections reset before or during the answer, or closed before the announced length, are a
/// `Fetch` error shared by every waiter; hyper-util does not retry them behind our back (one
/// request reached the endpoint per fetch), and the next fetch succeeds.
#[tokio::test]
async fn a_reset_or_early_closed_connection_is_a_fetch_error_for_every_waiter_and_the_next_fetch_recovers()
 {
    for fault in [Raw::ResetBeforeAnswer, Raw::ResetMidBody, Raw::CloseMidBody] {
        let endpoint = RawEndpoint::start().await;
        endpoint.then(fault);
        let tokens = akool::client_credentials("client-id", "client-secret")
            .base_url(&endpoint.base_url)
            .token_builder(client())
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .build()
            .unwrap();

        let waiters = (0..WAITERS).map(|_| tokens.fetch());
        let errors = bounded(futures::future::join_all(waiters)).await;
        let errors = errors.into_iter().map(|result| result.unwrap_err());
        same_error(errors, TokenErrorKind::Fetch);
        assert_eq!(endpoint.request_count(), 1, "{fault:?}");
        assert_eq!(tokens.generation(), None, "{fault:?}");

        assert_eq!(bounded(tokens.fetch()).await.unwrap(), 1, "{fault:?}");
        assert_eq!(endpoint.request_count(), 2, "{fault:?}");
        assert_eq!(tokens.fetch_count(), 2, "{fault:?}");
    }
}

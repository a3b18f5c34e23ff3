//! An in-process HTTP/1.1 server standing in for services nobody can run here (ECMWF who-am-i,
//! EFAS user details), speaking their protocol over real TCP, with a hit counter and fault
//! injection: delay, 5xx, garbage JSON, a huge body, connection reset.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the fake does with the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Delay(Duration),
    Status(u16),
    Garbage,
    Huge,
    Reset,
}

/// Answers `(status, json body)` for a request target (path and query) and request body.
pub type Handler = Arc<dyn Fn(&str, &str) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
pub struct FakeApi {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    fault: Arc<Mutex<Fault>>,
    targets: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    pub async fn start(handler: Handler) -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeApi {
            addr: listener.local_addr().unwrap(),
            hits: Arc::default(),
            fault: Arc::new(Mutex::new(Fault::None)),
            targets: Arc::default(),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (f, handler) = (f.clone(), handler.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buf.len() < end + length {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[end..end + length]).to_string();
                    f.hits.fetch_add(1, Ordering::SeqCst);
                    f.targets.lock().unwrap().push(target.clone());
                    let fault = *f.fault.lock().unwrap();
                    let (status, body) = match fault {
                        Fault::Reset => {
                            // SO_LINGER 0: the close sends a TCP RST, as a crashed peer would.
                            #[allow(deprecated)]
                            let _ = sock.set_linger(Some(Duration::ZERO));
                            return;
                        }
                        Fault::Delay(d) => {
                            tokio::time::sleep(d).await;
                            handler(&target, &body)
                        }
                        Fault::Status(s) => (s, "{\"error\":\"boom\"}".to_owned()),
                        Fault::Garbage => (200, "<html>not json".to_owned()),
                        Fault::Huge => (
                            200,
                            format!("{{\"uid\":\"{}\"}}", "x".repeat(3 * 1024 * 1024)),
                        ),
                        Fault::None => handler(&target, &body),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        fake
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// The token value of a `?token=` query, decoded.
pub fn token_param(target: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| {
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() + 1 {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(if b[i] == b'+' { b' ' } else { b[i] });
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
    })
}

//! A scriptable webhook receiver.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// Query string pairs (for the `get` format) or form pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let raw = if self.method == Method::GET {
            self.uri.query().unwrap_or("").as_bytes().to_vec()
        } else {
            self.body.to_vec()
        };
        url_pairs(&raw)
    }
}

fn url_pairs(raw: &[u8]) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(raw)))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// How to answer a request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    pub body: String,
    /// Answer only once this has a permit (see [`Reply::when`]).
    pub when: Option<Arc<tokio::sync::Semaphore>>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            delay: Duration::ZERO,
            body: String::new(),
            when: None,
        }
    }
    /// Hold the answer (the request is recorded at once) until the test
    /// adds a permit to `gate`: what lets a test keep the sender waiting
    /// for as long as it needs, instead of for a guessed time.
    pub fn when(mut self, gate: &Arc<tokio::sync::Semaphore>) -> Self {
        self.when = Some(gate.clone());
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Script = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

struct Shared {
    requests: Mutex<Vec<Received>>,
    script: Mutex<Script>,
    notify: Notify,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Start on 127.0.0.1:0, answering 200 to everything.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr")).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(Arc::new(|_: &Received| Reply::status(200))),
            notify: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answer future requests with `f`.
    pub fn script(&self, f: impl Fn(&Received) -> Reply + Send + Sync + 'static) {
        *self.shared.script.lock().expect("lock") = Arc::new(f);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.requests.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().expect("lock").len()
    }

    /// Wait until at least `n` requests have arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.shared.notify.notified();
            {
                let r = self.shared.requests.lock().expect("lock");
                if r.len() >= n {
                    return r.clone();
                }
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                panic!("timed out waiting for {n} requests; got {}", self.count());
            }
        }
    }

    /// [`Receiver::wait_for`], each request's body read as JSON.
    pub async fn wait_for_json(&self, n: usize, deadline: Duration) -> Vec<serde_json::Value> {
        self.wait_for(n, deadline)
            .await
            .iter()
            .map(Received::json)
            .collect()
    }

    /// Stop listening (connections are refused afterwards).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Received {
        method,
        uri,
        headers,
        body,
        at: std::time::Instant::now(),
    };
    let script = shared.script.lock().expect("lock").clone();
    let reply = script(&req);
    shared.requests.lock().expect("lock").push(req);
    shared.notify.notify_waiters();
    if let Some(gate) = &reply.when {
        let _ = gate.acquire().await;
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut res = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        res.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header"),
            http::HeaderValue::from_str(&v).expect("value"),
        );
    }
    res
}

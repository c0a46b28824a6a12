//! A small client for the JSON API.

use std::net::SocketAddr;

use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub body: Value,
}

impl Res {
    /// The `error.code` of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn new(addr: SocketAddr, key: String) -> Self {
        Self {
            base: format!("http://{addr}"),
            key,
            http: reqwest::Client::new(),
        }
    }

    pub fn with_key(&self, key: &str) -> Self {
        Self {
            key: key.to_string(),
            ..self.clone()
        }
    }

    async fn finish(r: reqwest::Response) -> Res {
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Res { status, body }
    }

    pub async fn get(&self, path: &str) -> Res {
        let r = self
            .http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request");
        Self::finish(r).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Res {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::finish(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Res {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Res {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Res {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Send raw bytes with a content type.
    pub async fn raw(&self, method: reqwest::Method, path: &str, ct: &str, body: Vec<u8>) -> Res {
        let r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("request");
        Self::finish(r).await
    }

    /// POST a raw message (`message/rfc822`): a message to send
    /// (`/v1/messages`) or a report received elsewhere (`/v1/inbound`).
    pub async fn post_raw(&self, path: &str, message: impl Into<Vec<u8>>) -> Res {
        self.raw(
            reqwest::Method::POST,
            path,
            "message/rfc822",
            message.into(),
        )
        .await
    }

    /// Add a sending domain (`POST /v1/domains`), so the account may send
    /// from it. Ed25519, since an RSA key takes long to make in a debug
    /// build; tests of RSA signing add their domains themselves.
    pub async fn add_domain(&self, domain: &str) -> Value {
        let body = serde_json::json!({"domain": domain, "algorithm": "ed25519"});
        let r = self.post("/v1/domains", &body).await;
        assert_eq!(r.status, 201, "add domain {domain}: {:?}", r.body);
        r.body
    }

    /// Create a webhook and return its JSON (with `id` and `secret`).
    pub async fn create_webhook(&self, body: Value) -> Value {
        let r = self.post("/v1/webhooks", &body).await;
        assert_eq!(r.status, 201, "create webhook: {:?}", r.body);
        r.body
    }
}

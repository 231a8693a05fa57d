//! Webhook notifications of `hoist.yml`'s `notifications.webhooks`: a JSON body
//! POSTed per run (when it ends) and per deployment (when it ends), as GitHub and
//! GitLab send theirs.
//!
//! Headers: `Content-Type: application/json`, `X-Hoist-Event: run|deployment`,
//! `X-Hoist-Delivery` (a random id, the same on every attempt), and, when the
//! webhook names a secret of hoist's secret store, `X-Hoist-Signature-256:
//! sha256=<hex HMAC-SHA256 of the body keyed by the secret>` (GitHub's scheme, so
//! receivers can reuse their checks). A delivery is tried three times (1 s, then
//! 2 s apart); a failure never fails the run, it is written to the run's log.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
pub use hoist_pipeline_spec::hoistfile::Event;
use hoist_pipeline_spec::hoistfile::Webhook;
use sha2::Sha256;

/// The signature header's value for `body` keyed by `key`: `sha256=<hex>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `body` as `event` to every webhook that asked for it; returns one line per
/// delivery for the run's log. Secrets are read from the store under `home`.
pub fn send(
    home: &Path,
    webhooks: &[Webhook],
    event: Event,
    body: &serde_json::Value,
) -> Vec<String> {
    let name = match event {
        Event::Run => "run",
        Event::Deployment => "deployment",
    };
    let bytes = body.to_string().into_bytes();
    let mut lines = Vec::new();
    for hook in webhooks.iter().filter(|h| h.events.contains(&event)) {
        let signature = match &hook.secret {
            None => None,
            Some(secret) => match read_secret(home, secret) {
                Ok(key) => Some(signature(&key, &bytes)),
                Err(e) => {
                    lines.push(format!("webhook {}: not sent: {e}", hook.url));
                    continue;
                }
            },
        };
        let delivery = hex::encode(rand::random::<[u8; 16]>());
        lines.push(
            match deliver(&hook.url, name, &delivery, signature.as_deref(), &bytes) {
                Ok(status) => format!("webhook {}: {name} event delivered ({status})", hook.url),
                Err(e) => format!("webhook {}: {name} event not delivered: {e}", hook.url),
            },
        );
    }
    lines
}

fn read_secret(home: &Path, name: &str) -> Result<Vec<u8>, String> {
    let store =
        hoist_secrets::SecretStore::open(&home.join("secrets")).map_err(|e| e.to_string())?;
    match store.get(name).map_err(|e| e.to_string())? {
        Some(v) => Ok(v.expose().to_vec()),
        None => Err(format!(
            "secret {name:?} is not in hoist's secret store (hoist secret set {name})"
        )),
    }
}

fn deliver(
    url: &str,
    event: &str,
    delivery: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(1 << (attempt - 1)));
        }
        let mut req = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Hoist-Event", event)
            .header("X-Hoist-Delivery", delivery);
        if let Some(sig) = signature {
            req = req.header("X-Hoist-Signature-256", sig);
        }
        match req.send(body) {
            Ok(resp) if resp.status().is_success() => return Ok(resp.status().as_u16()),
            Ok(resp) => last = format!("HTTP {}", resp.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("{last} (3 attempts)"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    #[test]
    fn signatures_match_githubs_published_example() {
        // GitHub's webhook docs: secret "It's a Secret to Everybody", payload
        // "Hello, World!".
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    /// One HTTP request read by a listener thread: (headers, body).
    fn receive(
        listener: TcpListener,
        status: &'static str,
    ) -> std::thread::JoinHandle<(String, String)> {
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            (head, String::from_utf8(body).unwrap())
        })
    }

    #[test]
    fn an_event_is_posted_as_json_to_the_webhooks_that_asked_for_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = receive(listener, "204 No Content");
        let hooks = vec![
            Webhook {
                url: url.clone(),
                events: [Event::Run].into(),
                secret: None,
            },
            Webhook {
                url: "http://127.0.0.1:1/never".into(),
                events: [Event::Deployment].into(),
                secret: None,
            },
        ];
        let home = tempfile::tempdir().unwrap();
        let body = serde_json::json!({"event": "run", "run": 7, "status": "succeeded"});
        let lines = send(home.path(), &hooks, Event::Run, &body);
        assert_eq!(lines, [format!("webhook {url}: run event delivered (204)")]);
        let (head, sent) = got.join().unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-hoist-event: run"), "{head}");
        assert!(!head.contains("x-hoist-signature-256"), "{head}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&sent).unwrap(),
            body
        );
    }

    #[test]
    fn a_webhook_with_a_secret_signs_the_body_and_a_missing_secret_is_reported() {
        let home = tempfile::tempdir().unwrap();
        let store = hoist_secrets::SecretStore::open(&home.path().join("secrets")).unwrap();
        store.set("hook-key", b"s3cret").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let got = receive(listener, "200 OK");
        let body = serde_json::json!({"event": "deployment"});
        let hooks = vec![
            Webhook {
                url: url.clone(),
                events: [Event::Deployment].into(),
                secret: Some("hook-key".into()),
            },
            Webhook {
                url: "http://127.0.0.1:1/".into(),
                events: [Event::Deployment].into(),
                secret: Some("absent".into()),
            },
        ];
        let lines = send(home.path(), &hooks, Event::Deployment, &body);
        assert_eq!(
            lines[0],
            format!("webhook {url}: deployment event delivered (200)")
        );
        assert!(
            lines[1].contains("secret \"absent\" is not in hoist's secret store"),
            "{}",
            lines[1]
        );
        let (head, sent) = got.join().unwrap();
        let want = signature(b"s3cret", sent.as_bytes());
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("x-hoist-signature-256: {want}")),
            "{head}"
        );
    }

    #[test]
    fn an_endpoint_that_keeps_failing_is_reported_not_fatal() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            for _ in 0..3 {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        let hooks = vec![Webhook {
            url: url.clone(),
            events: [Event::Run].into(),
            secret: None,
        }];
        let home = tempfile::tempdir().unwrap();
        let lines = send(home.path(), &hooks, Event::Run, &serde_json::json!({}));
        server.join().unwrap();
        assert_eq!(
            lines,
            [format!("webhook {url}: run event not delivered: HTTP 500 Internal Server Error (3 attempts)")]
        );
    }
}

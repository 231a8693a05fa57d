//! The web dashboard of `hoist server`: server-rendered pages (minijinja templates
//! compiled into the binary, a little JavaScript), behind a login with an API token
//! that opens a session (an `HttpOnly`, `SameSite=Strict` cookie naming a random
//! session kept in memory for 12 hours, or until its token is revoked; `Secure` too
//! when a TLS proxy in front sends `X-Forwarded-Proto: https`), with a CSRF token in
//! every form, checked
//! in constant time. A run's page follows the run live over server-sent events.
//!
//! Pages without a session redirect to the login page; the JSON API keeps its
//! bearer tokens and never accepts the cookie. Sessions live in this process: a
//! restarted server asks people to log in again.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use minijinja::context;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use hoist_pipeline::runs::{Run, Status};

use crate::queue::Queue;
use crate::tokens::Tokens;

/// How long a session lasts.
const SESSION_LIFE: Duration = Duration::from_secs(12 * 3600);
/// The session cookie.
const SESSION_COOKIE: &str = "hoist_session";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "hoist_login";
/// How often a live page looks for news.
const LIVE_EVERY: Duration = Duration::from_millis(500);

const STATUSES: [&str; 8] = [
    "queued",
    "pending",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
];

struct Session {
    user: String,
    /// The [`crate::tokens::fingerprint`] of the token that opened it: the session
    /// ends when that token is revoked.
    token: String,
    csrf: String,
    expires: Instant,
}

struct Dashboard {
    queue: Arc<Queue>,
    tokens: Tokens,
    sessions: Mutex<HashMap<String, Session>>,
    templates: minijinja::Environment<'static>,
}

/// A page's failure: a status and a one-line reason, as plain text.
#[derive(Debug)]
struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> PageError {
    PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Who is looking: the token's name, and the session's CSRF token.
#[derive(Clone, Debug)]
struct Viewer {
    user: String,
    csrf: String,
}

/// The page templates, compiled into the binary.
const TEMPLATES: [(&str, &str); 8] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    (
        "environment.html",
        include_str!("templates/environment.html"),
    ),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("images.html", include_str!("templates/images.html")),
    ("scan.html", include_str!("templates/scan.html")),
];

/// The template environment of [`TEMPLATES`].
fn templates() -> Result<minijinja::Environment<'static>, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    for (name, text) in TEMPLATES {
        env.add_template(name, text)?;
    }
    Ok(env)
}

/// The dashboard's routes, over `queue`.
pub fn router(queue: Arc<Queue>) -> Router {
    // The templates are part of the binary: a broken one is a build mistake, which
    // the unit test below catches; pages would answer 500 naming the template.
    let templates = templates().unwrap_or_else(|e| {
        tracing::error!("dashboard templates: {e}");
        minijinja::Environment::new()
    });
    let ui = Arc::new(Dashboard {
        tokens: Tokens::new(&queue.config.home),
        queue,
        sessions: Mutex::new(HashMap::new()),
        templates,
    });
    let pages = Router::new()
        .route("/", get(overview_page))
        .route("/environments/{service}", get(environment_page))
        .route("/environments/{service}/rollback", post(rollback))
        .route("/environments/{service}/traffic", get(traffic))
        .route("/images", get(images_page))
        .route("/runs/{id}/scan", get(scan_page))
        .route("/runs/{id}/sbom", get(sbom))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/events", get(run_events))
        .route("/runs/{id}/approve", post(approve))
        .route("/runs/{id}/reject", post(reject))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/runs/{id}/retry", post(retry))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(ui.clone(), session));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/ui/static/app.js", get(app_js))
        .route("/ui/static/app.css", get(app_css))
        .merge(pages)
        .with_state(ui)
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/app.js"),
    )
        .into_response()
}

async fn app_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/app.css"),
    )
        .into_response()
}

/// The value of cookie `name` in `headers`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Pages need a session: without one, the login page (coming back here after).
async fn session(State(ui): State<Arc<Dashboard>>, mut req: Request, next: Next) -> Response {
    let viewer = cookie(req.headers(), SESSION_COOKIE).and_then(|id| {
        let mut all = ui
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|_, s| s.expires > Instant::now());
        all.get(&id).map(|s| {
            let viewer = Viewer {
                user: s.user.clone(),
                csrf: s.csrf.clone(),
            };
            (id, s.token.clone(), viewer)
        })
    });
    // A revoked token ends its sessions at once, not when they expire.
    let viewer = match viewer {
        Some((id, token, viewer)) => {
            let tokens = ui.tokens.clone();
            match tokio::task::spawn_blocking(move || tokens.holds(&token)).await {
                Ok(Ok(true)) => Some(viewer),
                Ok(Ok(false)) => {
                    ui.sessions
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&id);
                    None
                }
                Ok(Err(e)) => return internal(e).into_response(),
                Err(e) => return internal(e).into_response(),
            }
        }
        None => None,
    };
    match viewer {
        Some(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        None => {
            let here = req.uri().path().to_owned();
            let next = if req.method() == axum::http::Method::GET {
                here
            } else {
                "/runs".to_owned()
            };
            Redirect::to(&format!("/login?next={}", encode(&next))).into_response()
        }
    }
}

/// Percent-encodes a path for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A page rendered from `name`, or the rendering error as a 500.
fn render(ui: &Dashboard, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match ui.templates.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering {name}: {e}"),
        )
            .into_response(),
    }
}

/// A local path to go back to after logging in (never another site). Browsers drop
/// tabs and newlines from a `Location` and read `\` as `/`, so `/<TAB>/evil.example`
/// would be `//evil.example`: control characters are refused with the rest.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/runs".to_owned(),
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Whether the browser reached the dashboard over HTTPS: `hoist server` speaks plain
/// HTTP, so only a TLS proxy in front can say so, with `X-Forwarded-Proto: https`
/// (trusting a client that claims it only withholds its own cookies from plain HTTP).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly` and `SameSite=Strict` always, `Secure` when the
/// browser came over HTTPS. `max_age` 0 deletes the cookie.
fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

fn login_form(
    ui: &Dashboard,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    secure: bool,
) -> Response {
    let csrf = random_token();
    let mut r = render(
        ui,
        status,
        "login.html",
        context! { user => None::<String>, login_csrf => csrf, next => next, error => error },
    );
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LOGIN_COOKIE, &csrf, "/login", 3600, secure)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_page(
    State(ui): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let secure = over_https(&headers);
    login_form(&ui, StatusCode::OK, &local(q.next.as_deref()), None, secure)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    csrf: Option<String>,
    next: Option<String>,
}

async fn login(
    State(ui): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = local(f.next.as_deref());
    let secure = over_https(&headers);
    let expected = cookie(&headers, LOGIN_COOKIE);
    let fresh = match (&f.csrf, &expected) {
        (Some(got), Some(want)) => same(got, want),
        _ => false,
    };
    if !fresh {
        return login_form(
            &ui,
            StatusCode::FORBIDDEN,
            &next,
            Some("The form's CSRF token is missing or stale: log in again from this page."),
            secure,
        );
    }
    let tokens = ui.tokens.clone();
    let token = f.token.trim().to_owned();
    let fingerprint = crate::tokens::fingerprint(&token);
    let verified = tokio::task::spawn_blocking(move || tokens.verify(&token)).await;
    let user = match verified {
        Ok(Ok(Some(user))) => user,
        Ok(Ok(None)) => {
            return login_form(
                &ui,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("That is not a valid API token."),
                secure,
            )
        }
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let id = random_token();
    ui.sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            id.clone(),
            Session {
                user,
                token: fingerprint,
                csrf: random_token(),
                expires: Instant::now() + SESSION_LIFE,
            },
        );
    let mut r = Redirect::to(&next).into_response();
    let h = r.headers_mut();
    for c in [
        set_cookie(SESSION_COOKIE, &id, "/", SESSION_LIFE.as_secs(), secure),
        set_cookie(LOGIN_COOKIE, "", "/login", 0, secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
    environment: Option<String>,
}

/// Refuses a form without the session's CSRF token.
fn checked(viewer: &Viewer, form: &CsrfForm) -> Result<(), PageError> {
    match &form.csrf {
        Some(got) if same(got, &viewer.csrf) => Ok(()),
        _ => Err(PageError(
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is missing or wrong (reload the page and try again)"
                .into(),
        )),
    }
}

async fn logout(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = checked(&viewer, &f) {
        return r.into_response();
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        ui.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    let clear = set_cookie(SESSION_COOKIE, "", "/", 0, over_https(&headers));
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `2026-12-07 01:02:03 UTC` of Unix milliseconds.
fn when(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.replace('T', " ").replace('Z', " UTC")
}

/// `1m 05s` between two Unix millisecond times (to now while going).
fn took(start: Option<i64>, end: Option<i64>) -> String {
    let Some(start) = start else {
        return String::new();
    };
    let end = end.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(start, |d| i64::try_from(d.as_millis()).unwrap_or(start))
    });
    let secs = (end - start).max(0) / 1000;
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[derive(Serialize)]
struct StageView {
    seq: i64,
    name: String,
    status: &'static str,
    message: String,
    took: String,
    /// The environment of an approval stage.
    gate: Option<String>,
    log: String,
}

fn stage_view(s: &hoist_pipeline::runs::Stage, log: String) -> StageView {
    StageView {
        seq: s.seq,
        name: s.name.clone(),
        status: s.status.as_str(),
        message: s.message.clone().unwrap_or_default(),
        took: took(s.started, s.finished),
        gate: s.name.strip_prefix("approval:").map(str::to_owned),
        log,
    }
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

#[derive(Deserialize)]
struct RunsQuery {
    status: Option<String>,
    app: Option<String>,
}

/// The environments (the daemon's services) with what each runs, and the latest runs.
async fn overview_page(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let queue = ui.queue.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<_, PageError> {
        let envs = crate::views::environments(&queue.config.home).map_err(internal)?;
        let runs = queue.runs_matching(10, None, None).map_err(internal)?;
        Ok((envs, runs))
    })
    .await;
    let (envs, runs) = match read {
        Ok(Ok(got)) => got,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return internal(e).into_response(),
    };
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "app": r.app, "sha": short(&r.commit.sha), "status": r.status.as_str(),
            })
        })
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "overview.html",
        context! {
            user => viewer.user, csrf => viewer.csrf, page => "overview",
            environments => minijinja::Value::from_serialize(&envs),
            runs => minijinja::Value::from_serialize(&runs),
        },
    )
}

/// One environment: deployments, tasks, events.
async fn environment_page(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(service): Path<String>,
) -> Response {
    let home = ui.queue.config.home.clone();
    let name = service.clone();
    let read = tokio::task::spawn_blocking(move || crate::views::environment(&home, &name)).await;
    let mut env = match read {
        Ok(Ok(Some(env))) => env,
        Ok(Ok(None)) => {
            return PageError(StatusCode::NOT_FOUND, format!("no environment {service:?}"))
                .into_response()
        }
        Ok(Err(e)) => return internal(e).into_response(),
        Err(e) => return internal(e).into_response(),
    };
    // What the template shows as text: times, durations, the strategy.
    if let Some(ds) = env["deployments"].as_array_mut() {
        for d in ds {
            let created = d["created"].as_i64();
            let finished = d["finished"].as_i64();
            d["created_text"] = created.map(when).unwrap_or_default().into();
            d["took"] = took(created, finished).into();
            // `{"type": "canary", "percent": 10, "bake": "30s"}` as `canary, percent 10, bake 30s`.
            d["strategy_text"] = match &d["strategy"] {
                serde_json::Value::Object(m) => {
                    let text = |v: &serde_json::Value| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let mut parts: Vec<String> = m.get("type").map(text).into_iter().collect();
                    parts.extend(
                        m.iter()
                            .filter(|(k, v)| *k != "type" && !v.is_null())
                            .map(|(k, v)| format!("{} {}", k.replace('_', " "), text(v))),
                    );
                    parts.join(", ").into()
                }
                other => other.as_str().unwrap_or_default().into(),
            };
        }
    }
    if let Some(es) = env["events"].as_array_mut() {
        for e in es {
            e["time_text"] = e["time"].as_i64().map(when).unwrap_or_default().into();
        }
    }
    render(
        &ui,
        StatusCode::OK,
        "environment.html",
        context! {
            user => viewer.user, csrf => viewer.csrf, page => "overview",
            env => minijinja::Value::from_serialize(&env),
            can_roll_back => env["deployments"].as_array().is_some_and(|d| d.len() > 1),
        },
    )
}

/// The proxy's request counts of `service` so far, per target group, as JSON
/// (`{"at": ms, "groups": [{"group", "by_class": [1xx..5xx]}]}`): the environment
/// page polls it and charts the differences (rate, 5xx ratio, traffic split).
async fn traffic(State(ui): State<Arc<Dashboard>>, Path(service): Path<String>) -> Response {
    let file = ui.queue.config.home.join("proxy").join("admin.addr");
    let addr = std::fs::read_to_string(&file)
        .ok()
        .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok());
    let Some(addr) = addr else {
        return PageError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no proxy runs (nothing was deployed here)".into(),
        )
        .into_response();
    };
    let client = hoist_proxy::admin::AdminClient::new(addr).with_timeout(Duration::from_secs(2));
    // The service's tasks as the daemon records them (live ones count as serving).
    let home = ui.queue.config.home.clone();
    let name = service.clone();
    let tasks = tokio::task::spawn_blocking(move || -> Option<(usize, usize)> {
        let state = crate::views::deploy_state(&home).ok()?;
        let all = state.tasks(&name, false).ok()?;
        Some((all.iter().filter(|t| t.phase.is_live()).count(), all.len()))
    })
    .await
    .ok()
    .flatten();
    // Latency: the proxy's histogram of `service`, buckets summed over its targets.
    let latency = match client.metrics().await {
        Ok(text) => latency_buckets(&text, &service),
        Err(e) => {
            tracing::debug!("the proxy's metrics: {e}");
            Vec::new()
        }
    };
    match client.counts().await {
        Ok(counts) => {
            let groups: Vec<serde_json::Value> = counts
                .routes
                .iter()
                .filter(|((s, _), _)| *s == service)
                .map(|((_, group), c)| serde_json::json!({"group": group, "by_class": c.by_class}))
                .collect();
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            axum::Json(serde_json::json!({
                "service": service, "at": at, "groups": groups, "latency": latency,
                "tasks": tasks.map(|(live, all)| serde_json::json!({"live": live, "all": all})),
            }))
            .into_response()
        }
        Err(e) => {
            PageError(StatusCode::BAD_GATEWAY, format!("the proxy's counts: {e}")).into_response()
        }
    }
}

/// `hoist_proxy_request_duration_seconds_bucket` of `service` in a Prometheus text
/// exposition, summed over its target groups and targets: `(le seconds, count)`,
/// ascending, `+Inf` as `f64::INFINITY` (serialized as `null`).
fn latency_buckets(text: &str, service: &str) -> Vec<(Option<f64>, u64)> {
    let want = format!("service=\"{service}\"");
    let mut sums: Vec<(f64, u64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("hoist_proxy_request_duration_seconds_bucket{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        if !labels.split(',').any(|l| l == want) {
            continue;
        }
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| {
                if v == "+Inf" {
                    Some(f64::INFINITY)
                } else {
                    v.parse().ok()
                }
            });
        let count = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        let (Some(le), Some(count)) = (le, count) else {
            continue;
        };
        match sums.iter_mut().find(|(b, _)| *b == le) {
            Some((_, n)) => *n += count as u64,
            None => sums.push((le, count as u64)),
        }
    }
    sums.sort_by(|a, b| a.0.total_cmp(&b.0));
    sums.into_iter()
        .map(|(le, n)| (le.is_finite().then_some(le), n))
        .collect()
}

/// Asks the deployment daemon to roll `service` back to its previous good
/// deployment at once (as `hoist rollback`), then back to the environment's page.
async fn rollback(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(service): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = checked(&viewer, &f) {
        return r.into_response();
    }
    let home = ui.queue.config.home.clone();
    let name = service.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<(), PageError> {
        let state = crate::views::deploy_state(&home).map_err(internal)?;
        if state.service(&name).map_err(internal)?.is_none() {
            return Err(PageError(
                StatusCode::NOT_FOUND,
                format!("no environment {name:?}"),
            ));
        }
        state
            .request_rollback(
                &name,
                &format!("on demand ({} in the dashboard)", viewer.user),
            )
            .map_err(|e| PageError(StatusCode::CONFLICT, e.to_string()))
    })
    .await;
    match done {
        Ok(Ok(())) => Redirect::to(&format!("/environments/{service}")).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

/// Where a run keeps its artifact `name` (a fixed name of the pipeline's).
fn artifact_path(ui: &Dashboard, id: i64, name: &str) -> std::path::PathBuf {
    ui.queue.runs().run_dir(id).join("artifacts").join(name)
}

/// A run's artifact `name`, if it has one.
fn artifact(ui: &Dashboard, id: i64, name: &str) -> Option<Vec<u8>> {
    std::fs::read(artifact_path(ui, id, name)).ok()
}

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "unknown"];

/// A scan report's findings, one row each, most severe first: vulnerabilities,
/// secrets and misconfigurations of `scan.json`.
fn findings(report: &serde_json::Value) -> Vec<serde_json::Value> {
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for v in report["vulnerabilities"].as_array().into_iter().flatten() {
        out.push(serde_json::json!({
            "kind": "vulnerability", "id": s(v, "id"), "severity": s(v, "severity").to_lowercase(),
            "at": format!("{} {}", s(v, "package"), s(v, "installed")), "title": s(v, "title"),
            "fix": v["fixed"].as_str().map(|f| format!("upgrade to {f}")).unwrap_or_default(),
        }));
    }
    for x in report["secrets"].as_array().into_iter().flatten() {
        out.push(serde_json::json!({
            "kind": "secret", "id": s(x, "rule_id"), "severity": s(x, "severity").to_lowercase(),
            "at": format!("{}:{}", s(x, "path"), x["line"]), "title": s(x, "title"),
            "fix": "remove it from the image and rotate it",
        }));
    }
    for m in report["misconfigurations"].as_array().into_iter().flatten() {
        out.push(serde_json::json!({
            "kind": "misconfiguration", "id": s(m, "rule_id"), "severity": s(m, "severity").to_lowercase(),
            "at": match m["line"].as_u64() {
                Some(line) if line > 0 => format!("{}:{line}", s(m, "path")),
                _ => s(m, "path"),
            },
            "title": s(m, "message"),
            "fix": s(m, "fix"),
        }));
    }
    let rank = |f: &serde_json::Value| {
        SEVERITIES
            .iter()
            .position(|x| f["severity"] == *x)
            .unwrap_or(SEVERITIES.len())
    };
    out.sort_by_key(rank);
    out
}

/// The images of the store, newest first, each with the scan of the newest run
/// that built it.
async fn images_page(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let reader = ui.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<serde_json::Value>, PageError> {
        let ui = reader;
        let mut images = ui.queue.engine.store().list().map_err(internal)?;
        images.sort_by(|a, b| b.added.cmp(&a.added));
        // The newest run of each digest.
        let mut run_of_digest: HashMap<String, i64> = HashMap::new();
        for r in ui.queue.runs_matching(500, None, None).map_err(internal)? {
            if let Some((_, digest)) = r.image.as_deref().and_then(|i| i.split_once('@')) {
                run_of_digest.entry(digest.to_owned()).or_insert(r.id);
            }
        }
        let mut out = Vec::new();
        for i in images {
            let digest = i.digest.to_string();
            let run = run_of_digest.get(&digest).copied();
            let report = run
                .and_then(|id| artifact(&ui, id, "scan.json"))
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let summary: Vec<serde_json::Value> = report
                .as_ref()
                .map(|r| {
                    let all = findings(r);
                    SEVERITIES
                        .iter()
                        .filter_map(|sev| {
                            let n = all.iter().filter(|f| f["severity"] == *sev).count();
                            (n > 0).then(|| serde_json::json!({"severity": sev, "count": n}))
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(serde_json::json!({
                "digest": digest,
                "short": digest.chars().take(19).collect::<String>(),
                "names": i.names,
                "size": hoist_oci::human_bytes(ui.queue.engine.store().image_size(&i)),
                "added": i.added,
                "run": if report.is_some() { run } else { None },
                "summary": summary,
                "sbom": run.is_some_and(|id| artifact_path(&ui, id, "sbom.cdx.json").is_file()),
            }));
        }
        Ok(out)
    })
    .await;
    match read {
        Ok(Ok(images)) => render(
            &ui,
            StatusCode::OK,
            "images.html",
            context! {
                user => viewer.user, csrf => viewer.csrf, page => "images",
                images => minijinja::Value::from_serialize(&images),
            },
        ),
        Ok(Err(e)) => e.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ScanQuery {
    severity: Option<String>,
    kind: Option<String>,
}

/// A run's scan report, filtered by lowest severity and kind.
async fn scan_page(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<ScanQuery>,
) -> Response {
    let reader = ui.clone();
    let read =
        tokio::task::spawn_blocking(move || -> Result<(serde_json::Value, bool), PageError> {
            run_of(&reader, id)?;
            let bytes = artifact(&reader, id, "scan.json").ok_or_else(|| {
                PageError(
                    StatusCode::NOT_FOUND,
                    format!("run #{id} has no scan report"),
                )
            })?;
            let report = serde_json::from_slice(&bytes).map_err(internal)?;
            Ok((
                report,
                artifact_path(&reader, id, "sbom.cdx.json").is_file(),
            ))
        })
        .await;
    let (report, sbom) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return internal(e).into_response(),
    };
    let all = findings(&report);
    let severity = q
        .severity
        .filter(|s| SEVERITIES.contains(&s.as_str()))
        .unwrap_or_else(|| "unknown".to_owned());
    let floor = SEVERITIES.iter().position(|s| *s == severity).unwrap_or(4);
    let kind = q
        .kind
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "all".to_owned());
    let shown: Vec<&serde_json::Value> = all
        .iter()
        .filter(|f| {
            SEVERITIES
                .iter()
                .position(|s| f["severity"] == *s)
                .is_some_and(|p| p <= floor)
        })
        .filter(|f| kind == "all" || f["kind"] == kind.as_str())
        .collect();
    let target = report["target"]["name"]
        .as_str()
        .or_else(|| report["target"].as_str())
        .unwrap_or_default()
        .to_owned();
    render(
        &ui,
        StatusCode::OK,
        "scan.html",
        context! {
            user => viewer.user, csrf => viewer.csrf, page => "images",
            run => id, target => target, sbom => sbom,
            findings => minijinja::Value::from_serialize(&shown), total => all.len(),
            severities => SEVERITIES.to_vec(), severity => severity,
            kinds => vec!["all", "vulnerability", "secret", "misconfiguration"], kind => kind,
        },
    )
}

/// A run's SBOM (CycloneDX JSON), as a download.
async fn sbom(State(ui): State<Arc<Dashboard>>, Path(id): Path<i64>) -> Response {
    let reader = ui.clone();
    let read = tokio::task::spawn_blocking(move || artifact(&reader, id, "sbom.cdx.json")).await;
    match read {
        Ok(Some(bytes)) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.cyclonedx+json".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"run-{id}.cdx.json\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => {
            PageError(StatusCode::NOT_FOUND, format!("run #{id} has no SBOM")).into_response()
        }
        Err(e) => internal(e).into_response(),
    }
}

async fn runs_page(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<RunsQuery>,
) -> Response {
    let status = q.status.filter(|s| !s.is_empty());
    let app = q.app.filter(|s| !s.is_empty());
    let queue = ui.queue.clone();
    let (s, a) = (status.clone(), app.clone());
    let runs =
        tokio::task::spawn_blocking(move || queue.runs_matching(100, s.as_deref(), a.as_deref()))
            .await;
    let runs = match runs {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let rows: Vec<minijinja::Value> = runs
        .iter()
        .map(|r| {
            minijinja::Value::from_serialize(serde_json::json!({
                "id": r.id,
                "app": r.app,
                "sha": short(&r.commit.sha),
                "branch": r.commit.branch,
                "status": r.status.as_str(),
                "stages": r.stages.iter().map(|s| serde_json::json!({"name": s.name, "status": s.status.as_str()})).collect::<Vec<_>>(),
                "created": when(r.created),
                "took": took(Some(r.created), r.finished),
            }))
        })
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "runs.html",
        context! {
            user => viewer.user, csrf => viewer.csrf, page => "runs",
            runs => rows, statuses => STATUSES.to_vec(),
            status => status.unwrap_or_default(), app => app.unwrap_or_default(),
        },
    )
}

fn run_of(ui: &Dashboard, id: i64) -> Result<Run, PageError> {
    ui.queue
        .runs()
        .get(id)
        .map_err(internal)?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("no run #{id}")))
}

async fn run_page(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
) -> Response {
    let view = {
        let ui = ui.clone();
        tokio::task::spawn_blocking(move || -> Result<serde_json::Value, PageError> {
            let run = run_of(&ui, id)?;
            let mut stages = Vec::new();
            for s in &run.stages {
                let log = ui
                    .queue
                    .runs()
                    .read_log(id, s.seq, 0, s.status.is_final())
                    .unwrap_or_default();
                stages.push(stage_view(s, String::from_utf8_lossy(&log).into_owned()));
            }
            Ok(serde_json::json!({
                "id": run.id,
                "app": run.app,
                "sha": short(&run.commit.sha),
                "branch": run.commit.branch,
                "trigger": run.trigger,
                "status": run.status.as_str(),
                "final": run.status.is_final(),
                "image": run.image,
                "error": run.error,
                "created": when(run.created),
                "cancellable": !run.status.is_final(),
                "retryable": run.repo.is_some() && matches!(run.status, Status::Failed | Status::Cancelled),
                "stages": stages,
            }))
        })
        .await
    };
    match view {
        Ok(Ok(run)) => render(
            &ui,
            StatusCode::OK,
            "run.html",
            context! {
                user => viewer.user, csrf => viewer.csrf, page => "runs",
                run => minijinja::Value::from_serialize(&run),
            },
        ),
        Ok(Err(r)) => r.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

/// What a live page has been told.
struct Live {
    ui: Arc<Dashboard>,
    id: i64,
    offsets: HashMap<i64, u64>,
    shown: HashMap<i64, (String, String, String)>,
    status: Option<String>,
    pending: std::collections::VecDeque<Event>,
    done: bool,
}

impl Live {
    /// Reads the run once and queues what changed since the last look.
    fn look(&mut self) -> Result<(), String> {
        let run = self
            .ui
            .queue
            .runs()
            .get(self.id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no run #{}", self.id))?;
        for s in &run.stages {
            let view = stage_view(s, String::new());
            let key = (
                view.status.to_owned(),
                view.message.clone(),
                view.took.clone(),
            );
            if self.shown.get(&s.seq) != Some(&key) {
                self.shown.insert(s.seq, key);
                if let Ok(e) = Event::default().event("stage").json_data(&view) {
                    self.pending.push_back(e);
                }
            }
            let from = self.offsets.get(&s.seq).copied().unwrap_or(0);
            let text = self
                .ui
                .queue
                .runs()
                .read_log(self.id, s.seq, from, s.status.is_final())
                .unwrap_or_default();
            if !text.is_empty() {
                self.offsets.insert(s.seq, from + text.len() as u64);
                let data =
                    serde_json::json!({ "seq": s.seq, "text": String::from_utf8_lossy(&text) });
                if let Ok(e) = Event::default().event("log").json_data(data) {
                    self.pending.push_back(e);
                }
            }
        }
        let status = run.status.as_str().to_owned();
        if self.status.as_deref() != Some(status.as_str()) {
            self.status = Some(status.clone());
            let data = serde_json::json!({ "status": status, "final": run.status.is_final() });
            if let Ok(e) = Event::default().event("run").json_data(data) {
                self.pending.push_back(e);
            }
        }
        if run.status.is_final() {
            self.done = true;
        }
        Ok(())
    }
}

/// The run's news as server-sent events: `stage` (a stage's status, message and
/// duration), `log` (new log text of a stage) and `run` (the run's status; the
/// stream ends after the final one). A page that opens the stream gets the
/// whole log first, so it may start from an empty page.
async fn run_events(State(ui): State<Arc<Dashboard>>, Path(id): Path<i64>) -> Response {
    // A reconnecting browser sends Last-Event-ID; every stream starts at the
    // beginning all the same (a page that reconnects reloads first).
    let live = Live {
        ui,
        id,
        offsets: HashMap::new(),
        shown: HashMap::new(),
        status: None,
        pending: std::collections::VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(live, move |mut live| async move {
        loop {
            if let Some(e) = live.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(e), live));
            }
            if live.done {
                return None;
            }
            // The first look is at once; every look sets the status.
            if live.status.is_some() {
                tokio::time::sleep(LIVE_EVERY).await;
            }
            let looked = tokio::task::spawn_blocking(move || {
                let r = live.look();
                (live, r)
            })
            .await;
            match looked {
                Ok((l, Ok(()))) => live = l,
                Ok((_, Err(e))) => {
                    tracing::warn!("live run #{id}: {e}");
                    return None;
                }
                Err(e) => {
                    tracing::warn!("live run #{id}: {e}");
                    return None;
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What a form asks of a run: (queue, run, who, environment).
type Action = fn(&Queue, i64, &str, Option<&str>) -> Result<(), String>;

/// Runs `action` on run `id` after the CSRF check, then back to the run's page.
async fn act(
    ui: Arc<Dashboard>,
    viewer: Viewer,
    id: i64,
    form: CsrfForm,
    action: Action,
) -> Response {
    if let Err(r) = checked(&viewer, &form) {
        return r.into_response();
    }
    let done = tokio::task::spawn_blocking(move || {
        run_of(&ui, id)?;
        action(&ui.queue, id, &viewer.user, form.environment.as_deref())
            .map_err(|e| PageError(StatusCode::CONFLICT, e))
    })
    .await;
    match done {
        Ok(Ok(())) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Ok(Err(r)) => r.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

fn decision(q: &Queue, id: i64, by: &str, env: Option<&str>, approve: bool) -> Result<(), String> {
    let env = env.ok_or("which environment: the form has no environment field")?;
    q.runs()
        .decide(id, env, approve, &format!("{by} (dashboard)"))
        .map_err(|e| e.to_string())
}

async fn approve(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(ui, viewer, id, f, |q, id, by, env| {
        decision(q, id, by, env, true)
    })
    .await
}

async fn reject(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(ui, viewer, id, f, |q, id, by, env| {
        decision(q, id, by, env, false)
    })
    .await
}

async fn cancel(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(ui, viewer, id, f, |q, id, _, _| {
        q.runs()
            .request_cancel(id)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

async fn retry(
    State(ui): State<Arc<Dashboard>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(ui, viewer, id, f, |q, id, _, _| {
        q.runs().retry(id).map_err(|e| e.to_string())?;
        q.wake();
        Ok(())
    })
    .await
}

#[cfg(test)]
mod cookie_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cookies_are_secure_when_a_tls_proxy_says_the_browser_came_over_https() {
        let mut headers = HeaderMap::new();
        assert!(!over_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert!(over_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!over_https(&headers));
        assert_eq!(
            set_cookie("hoist_session", "abc", "/", 43200, true),
            "hoist_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure"
        );
        assert_eq!(
            set_cookie("hoist_login", "", "/login", 0, false),
            "hoist_login=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn after_login_only_local_paths_are_followed() {
        assert_eq!(local(Some("/runs/7?x=1")), "/runs/7?x=1");
        for other in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "evil.example",
        ] {
            assert_eq!(local(Some(other)), "/runs", "{other:?}");
        }
        assert_eq!(local(None), "/runs");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn latency_buckets_of_a_service_are_summed_over_its_targets() {
        let text = "\
# HELP hoist_proxy_request_duration_seconds Latency.
hoist_proxy_request_duration_seconds_bucket{service=\"web\",target_group=\"a\",target=\"t1\",le=\"0.001\"} 2
hoist_proxy_request_duration_seconds_bucket{service=\"web\",target_group=\"a\",target=\"t1\",le=\"+Inf\"} 3
hoist_proxy_request_duration_seconds_bucket{service=\"web\",target_group=\"b\",target=\"t2\",le=\"0.001\"} 1
hoist_proxy_request_duration_seconds_bucket{service=\"web\",target_group=\"b\",target=\"t2\",le=\"+Inf\"} 1
hoist_proxy_request_duration_seconds_bucket{service=\"web-2\",target_group=\"c\",target=\"t3\",le=\"0.001\"} 9
hoist_proxy_request_duration_seconds_count{service=\"web\",target_group=\"a\",target=\"t1\"} 3
";
        assert_eq!(
            super::latency_buckets(text, "web"),
            vec![(Some(0.001), 3), (None, 4)]
        );
    }

    #[test]
    fn every_template_compiles() {
        if let Err(e) = super::templates() {
            panic!("{e:#}");
        }
    }
}

//! The HTTP routes of `hoist server`. Everything under `/api/v1` needs an API
//! token (`Authorization: Bearer hoist_...`) but the OpenAPI document and the
//! webhooks, which carry their own proof (a signature, a shared token).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use hoist_pipeline::runs::{Run, Status};

use crate::queue::{Queue, Queued};
use crate::tokens::Tokens;
use crate::webhook;

/// The OpenAPI 3.1 document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

struct Api {
    queue: Arc<Queue>,
    tokens: Tokens,
}

/// Who called: the name of the token.
#[derive(Clone, Debug)]
struct Caller(String);

/// An error answer: a status and a JSON `{"error": ...}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn conflict(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::CONFLICT, e.to_string())
}

/// The routes, over `queue`.
pub fn router(queue: Arc<Queue>) -> Router {
    let api = Arc::new(Api {
        tokens: Tokens::new(&queue.config.home),
        queue,
    });
    let authed = Router::new()
        .route("/api/v1/runs", get(list_runs).post(create_run))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/runs/{id}/stages/{seq}/log", get(stage_log))
        .route("/api/v1/runs/{id}/approve", post(approve))
        .route("/api/v1/runs/{id}/reject", post(reject))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
        .route("/api/v1/runs/{id}/retry", post(retry))
        .route("/api/v1/runs/{id}/scan", get(scan_report))
        .route("/api/v1/runs/{id}/artifacts/{name}", get(artifact))
        .route("/api/v1/repos", get(repos))
        .route("/api/v1/environments", get(environments))
        .route("/api/v1/services/{name}/deployments", get(deployments))
        .route("/api/v1/images", get(images))
        .route_layer(middleware::from_fn_with_state(api.clone(), auth));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/webhooks/github", post(github))
        .route("/api/v1/webhooks/gitlab", post(gitlab))
        .merge(authed)
        .with_state(api)
}

async fn auth(State(api): State<Arc<Api>>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return unauthorized("an API token is needed: Authorization: Bearer <token> (hoist server token create NAME)");
    };
    match api.tokens.verify(token) {
        Ok(Some(name)) => {
            req.extensions_mut().insert(Caller(name));
            next.run(req).await
        }
        Ok(None) => unauthorized("the API token is not valid"),
        Err(e) => internal(e).into_response(),
    }
}

fn unauthorized(why: &str) -> Response {
    let mut r = ApiError(StatusCode::UNAUTHORIZED, why.to_owned()).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Runs blocking work (SQLite, git) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

fn run_of(api: &Api, id: i64) -> ApiResult<Run> {
    api.queue
        .runs()
        .get(id)
        .map_err(internal)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no run #{id}")))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
    status: Option<String>,
    app: Option<String>,
}

async fn list_runs(
    State(api): State<Arc<Api>>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Run>>> {
    blocking(move || {
        let limit = q.limit.unwrap_or(50).min(1000);
        api.queue
            .runs_matching(limit, q.status.as_deref(), q.app.as_deref())
            .map(Json)
            .map_err(internal)
    })
    .await
}

async fn get_run(State(api): State<Arc<Api>>, Path(id): Path<i64>) -> ApiResult<Json<Run>> {
    blocking(move || run_of(&api, id).map(Json)).await
}

#[derive(Deserialize)]
struct NewRun {
    repo: String,
    branch: String,
    sha: Option<String>,
}

async fn create_run(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<NewRun>,
) -> ApiResult<Response> {
    blocking(move || {
        let repo = api.queue.repo(&body.repo).cloned().ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no repository {:?} on this server", body.repo),
            )
        })?;
        if let Some(sha) = &body.sha {
            if sha.len() < 7 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("sha: {sha:?} is not a commit id"),
                ));
            }
        }
        let by = format!("api ({})", caller.0);
        Ok(queued(api.queue.trigger(
            &repo,
            &body.branch,
            body.sha.as_deref(),
            &by,
        )))
    })
    .await
}

#[derive(Deserialize)]
struct Offset {
    offset: Option<u64>,
}

/// A stage's log from byte `offset` on: whole lines only while the stage goes.
/// `X-Hoist-Next-Offset` is where to ask from next; `X-Hoist-Stage-Status` says
/// whether more can come.
async fn stage_log(
    State(api): State<Arc<Api>>,
    Path((id, seq)): Path<(i64, i64)>,
    Query(q): Query<Offset>,
) -> ApiResult<Response> {
    blocking(move || {
        let run = run_of(&api, id)?;
        let stage = run.stages.iter().find(|s| s.seq == seq).ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("run #{id} has no stage {seq}"),
            )
        })?;
        let from = q.offset.unwrap_or(0);
        let text = api
            .queue
            .runs()
            .read_log(id, seq, from, stage.status.is_final())
            .map_err(internal)?;
        let next = from + text.len() as u64;
        let mut r = Response::new(Body::from(text));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert("x-hoist-next-offset", HeaderValue::from(next));
        h.insert(
            "x-hoist-stage-status",
            HeaderValue::from_static(stage.status.as_str()),
        );
        Ok(r)
    })
    .await
}

#[derive(Deserialize)]
struct Decision {
    environment: String,
}

async fn decide(
    api: Arc<Api>,
    id: i64,
    caller: Caller,
    env: String,
    approve: bool,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        run_of(&api, id)?;
        api.queue
            .runs()
            .decide(id, &env, approve, &caller.0)
            .map_err(conflict)?;
        Ok(Json(json!({
            "run": id,
            "environment": env,
            "approved": approve,
            "by": caller.0,
        })))
    })
    .await
}

async fn approve(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(d): Json<Decision>,
) -> ApiResult<Json<Value>> {
    decide(api, id, caller, d.environment, true).await
}

async fn reject(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(d): Json<Decision>,
) -> ApiResult<Json<Value>> {
    decide(api, id, caller, d.environment, false).await
}

async fn cancel(State(api): State<Arc<Api>>, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    blocking(move || {
        run_of(&api, id)?;
        let now = api.queue.runs().request_cancel(id).map_err(conflict)?;
        Ok(Json(
            json!({"run": id, "status": now, "cancel_requested": true}),
        ))
    })
    .await
}

async fn retry(State(api): State<Arc<Api>>, Path(id): Path<i64>) -> ApiResult<Response> {
    blocking(move || {
        run_of(&api, id)?;
        api.queue.runs().retry(id).map_err(conflict)?;
        api.queue.wake();
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run": id, "status": Status::Queued})),
        )
            .into_response())
    })
    .await
}

fn artifact_file(api: &Api, id: i64, name: &str) -> ApiResult<Response> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\\') {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not an artifact name"),
        ));
    }
    run_of(api, id)?;
    let path = api.queue.runs().run_dir(id).join("artifacts").join(name);
    let bytes = std::fs::read(&path).map_err(|_| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("run #{id} has no artifact {name:?}"),
        )
    })?;
    let kind = if name.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}

async fn artifact(
    State(api): State<Arc<Api>>,
    Path((id, name)): Path<(i64, String)>,
) -> ApiResult<Response> {
    blocking(move || artifact_file(&api, id, &name)).await
}

async fn scan_report(State(api): State<Arc<Api>>, Path(id): Path<i64>) -> ApiResult<Response> {
    blocking(move || artifact_file(&api, id, "scan.json")).await
}

async fn repos(State(api): State<Arc<Api>>) -> Json<Value> {
    let all: Vec<Value> = api
        .queue
        .config
        .repos
        .iter()
        .map(|r| json!({"name": r.name, "url": r.url, "branches": r.branches}))
        .collect();
    Json(Value::from(all))
}

fn deploy_state(api: &Api) -> ApiResult<hoist_deploy::state::State> {
    crate::views::deploy_state(&api.queue.config.home).map_err(internal)
}

/// Every service of the deployment daemon (an environment is `<app>-<env>`),
/// with the deployment it converges to and the last one that succeeded.
async fn environments(State(api): State<Arc<Api>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        crate::views::environments(&api.queue.config.home)
            .map(Json)
            .map_err(internal)
    })
    .await
}

async fn deployments(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let state = deploy_state(&api)?;
        if state.service(&name).map_err(internal)?.is_none() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no service {name:?}"),
            ));
        }
        let limit = q.limit.unwrap_or(20).min(500) as u32;
        let all: Vec<Value> = state
            .deployments(&name, limit)
            .map_err(internal)?
            .iter()
            .map(crate::views::deployment_json)
            .collect();
        Ok(Json(Value::from(all)))
    })
    .await
}

async fn images(State(api): State<Arc<Api>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let all: Vec<Value> = api
            .queue
            .engine
            .store()
            .list()
            .map_err(internal)?
            .iter()
            .map(|r| json!({"digest": r.digest.to_string(), "names": r.names, "size": r.size, "added": r.added}))
            .collect();
        Ok(Json(Value::from(all)))
    })
    .await
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn queued(result: Result<Queued, String>) -> Response {
    match result {
        Ok(Queued::Run { id, superseded }) => (
            StatusCode::ACCEPTED,
            Json(json!({"run": id, "superseded": superseded})),
        )
            .into_response(),
        Ok(Queued::Ignored(why)) => (StatusCode::OK, Json(json!({"ignored": why}))).into_response(),
        Err(e) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, e).into_response(),
    }
}

/// The webhooks' shared secret, or the answer that they are off.
fn webhook_secret(api: &Api) -> ApiResult<Vec<u8>> {
    api.queue.config.webhook_secret.clone().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are off: start the server with a webhook secret".into(),
        )
    })
}

/// GitHub: `X-Hub-Signature-256` must be the HMAC of the body with the shared
/// secret, or nothing happens (401). `ping` answers 200; `push` queues a run.
async fn github(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = match webhook_secret(&api) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if !webhook::github_signature_ok(&secret, &body, header_text(&headers, "x-hub-signature-256")) {
        tracing::warn!("a GitHub webhook with a wrong or missing signature was refused");
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 does not match".into(),
        )
        .into_response();
    }
    let event = header_text(&headers, "x-github-event").unwrap_or_default();
    match event {
        "ping" => return Json(json!({"ok": true})).into_response(),
        "push" => {}
        other => {
            return Json(json!({"ignored": format!("event {other:?}: only push starts runs")}))
                .into_response()
        }
    }
    let push = match webhook::github_push(&body) {
        Ok(p) => p,
        Err(e) => return ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let delivery = header_text(&headers, "x-github-delivery")
        .unwrap_or("-")
        .to_owned();
    let trigger = format!("github push (delivery {delivery})");
    queued(
        blocking(move || Ok(api.queue.push(&push, &trigger)))
            .await
            .unwrap_or_else(|e| Err(e.1)),
    )
}

/// GitLab: `X-Gitlab-Token` must be the shared secret (401 otherwise).
async fn gitlab(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = match webhook_secret(&api) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if !webhook::gitlab_token_ok(&secret, header_text(&headers, "x-gitlab-token")) {
        tracing::warn!("a GitLab webhook with a wrong or missing token was refused");
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "X-Gitlab-Token does not match".into(),
        )
        .into_response();
    }
    let push = match webhook::gitlab_push(&body) {
        Ok(p) => p,
        Err(e) => return ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    queued(
        blocking(move || Ok(api.queue.push(&push, "gitlab push")))
            .await
            .unwrap_or_else(|e| Err(e.1)),
    )
}

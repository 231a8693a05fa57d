//! `hoist server` and `hoist server token ...`: thin handlers over hoist-server.

use anyhow::{bail, Context, Result};

use crate::cli::{ServerArgs, ServerCommand, TokenCommand};
use crate::settings::{Remote, Settings};

/// `hoist server`
pub fn run(settings: &Settings, args: ServerArgs) -> Result<()> {
    if let Some(ServerCommand::Token(cmd)) = args.command {
        return token(settings, cmd);
    }
    let repos = args
        .repos
        .iter()
        .map(|r| hoist_server::Repo::parse(r).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    for (i, r) in repos.iter().enumerate() {
        if repos[..i].iter().any(|o| o.name == r.name) {
            bail!("--repo {}: the name is given twice", r.name);
        }
    }
    if repos.is_empty() {
        eprintln!("warning: no --repo given: webhooks and polling have nothing to build");
    }
    let secrets = hoist_secrets::SecretStore::open(&settings.home.join("secrets"))?;
    let webhook_secret = secrets
        .get(&args.webhook_secret)
        .with_context(|| format!("reading the webhook secret {:?}", args.webhook_secret))?
        .map(|v| v.expose().to_vec());
    if webhook_secret.is_none() {
        eprintln!(
            "warning: no secret {:?} in hoist's store: webhooks are refused until \
             `hoist secret set {}` and a restart",
            args.webhook_secret, args.webhook_secret
        );
    }
    let store = settings.store()?;
    let builder = super::build::builder(settings)?;
    let exe = hoist_deploy::client::current_exe()?;
    let engine = hoist_pipeline::Engine::open(
        &settings.home,
        &exe,
        store,
        builder,
        settings.database.as_deref(),
    )?
    .with_containers(settings.pipeline_runtime()?)
    .with_registry_options(super::remote::options(&settings.home, false));
    let config = hoist_server::Config {
        home: settings.home.clone(),
        listen: args.listen,
        repos,
        poll: args.poll,
        jobs: args.jobs,
        webhook_secret,
    };
    hoist_server::serve(config, engine, |addr| {
        eprintln!(
            "hoist server listening on http://{addr} (API: /api/v1, OpenAPI: /api/v1/openapi.json)"
        );
    })?;
    Ok(())
}

fn token(settings: &Settings, cmd: TokenCommand) -> Result<()> {
    let tokens = hoist_server::tokens::Tokens::new(&settings.home);
    match cmd {
        TokenCommand::Create { name } => {
            let t = tokens.create(&name)?;
            println!("{t}");
            eprintln!("token {name:?} made; it is not shown again");
        }
        TokenCommand::Ls => {
            let all = tokens.list()?;
            if settings.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for t in all {
                    println!("{}", t.name);
                }
            }
        }
        TokenCommand::Revoke { name } => {
            tokens.revoke(&name)?;
            eprintln!("token {name:?} revoked");
        }
    }
    Ok(())
}

/// A client of `hoist server`'s API.
pub struct Client {
    remote: Remote,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `remote`.
    pub fn new(remote: &Remote) -> Client {
        Client {
            remote: remote.clone(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    fn answer(
        &self,
        path: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String> {
        let url = format!("{}{path}", self.remote.url);
        let mut r = r.with_context(|| format!("asking {url}"))?;
        let status = r.status();
        let text = r
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            let why = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("{url}: {status}: {why}");
        }
        Ok(text)
    }

    /// GET `path` as text.
    pub fn text(&self, path: &str) -> Result<Vec<u8>> {
        let r = self
            .agent
            .get(format!("{}{path}", self.remote.url))
            .header("Authorization", format!("Bearer {}", self.remote.token))
            .call();
        Ok(self.answer(path, r)?.into_bytes())
    }

    /// GET `path` as JSON.
    pub fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let text = self.text(path)?;
        serde_json::from_slice(&text).with_context(|| format!("the answer of {path}"))
    }

    /// POST `body` to `path`, JSON both ways.
    pub fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        let r = self
            .agent
            .post(format!("{}{path}", self.remote.url))
            .header("Authorization", format!("Bearer {}", self.remote.token))
            .header("Content-Type", "application/json")
            .send(body.to_string());
        let text = self.answer(path, r)?;
        serde_json::from_str(&text).with_context(|| format!("the answer of {path}"))
    }
}

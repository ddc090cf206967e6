//! The CLI's HTTP client: talking to a running node's API.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::node::config::Config;

/// The API base URL of a configured node (a wildcard listen address means loopback; port 0
/// means "whatever the running node reported in its data directory").
pub(crate) fn api_url(config: &Config) -> String {
    let mut addr = config.api_listen;
    if addr.port() == 0
        && let Some(actual) = crate::node::daemon::read_api_addr(&config.data_dir)
    {
        addr = actual;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// A client with sensible timeouts.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(300))
        .build()?)
}

/// GETs JSON, turning API errors into their message.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {url}; is `lmsync run` running?"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))?;
    if !status.is_success() {
        bail!(
            "{url}: {}",
            body["message"].as_str().unwrap_or("request failed")
        );
    }
    Ok(body)
}

/// POSTs `body` with the node's token, turning API errors into their message.
pub(crate) async fn post_json(url: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client()?
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {url}; is `lmsync run` running?"))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))?;
    if !status.is_success() {
        bail!("{}", answer["message"].as_str().unwrap_or("request failed"));
    }
    Ok(answer)
}

/// GETs a text body (CSV, HTML, a table), turning API errors into their message.
pub(crate) async fn get_text(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {url}; is `lmsync run` running?"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{url}: {message}");
    }
    Ok(body)
}

/// POSTs `body` to `path` of the node configured in `config`, with its token.
pub(crate) fn post_to_node(
    config: &std::path::Path,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let config = Config::load(config).context("invalid config")?;
    let url = format!("{}{path}", api_url(&config));
    let token = crate::node::daemon::read_token(&config.token_file)?;
    super::runtime()?
        .block_on(post_json(&url, &token, body))
        .context("the node refused")
}

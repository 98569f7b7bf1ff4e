//! `routeros-web`: the management UI (port 8080) and REST API (8081, and 8080 too) of the
//! router. It runs unprivileged and changes nothing itself: every action is a request on
//! the daemon's control socket. The contract is `docs/web-api.md`.
//!
//! Layout: [`api`] handlers per area, [`auth`] users/sessions/keys/roles, [`daemon`] the
//! socket client, [`telemetry`] the 1 s status poller behind `/status`, `/stream` and
//! `/metrics`, [`audit`] the change log, [`error`] the one error type, [`extract`] body and
//! query extractors, [`wizard`] first-boot setup, [`ui`] the embedded static files.

pub mod api;
pub mod audit;
pub mod auth;
pub mod daemon;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod pppoe_secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod upgrade;
pub mod wizard;

use auth::{HashCost, Hasher, KeyStore, LoginLimiter, Sessions, UserStore};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use error::ApiError;
use limits::{KeyedLimit, Limits};
use server::ConnectionCaps;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use telemetry::Telemetry;
use tokio::sync::{watch, Semaphore};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Largest request body accepted (a config is a few KiB).
const BODY_LIMIT: usize = 1 << 20;

pub struct Options {
    pub socket: PathBuf,
    /// users.json, keys.json, audit.jsonl, setup.json.
    pub data_dir: PathBuf,
    pub hash_cost: HashCost,
    pub daemon_timeout: Duration,
    /// Connection, timeout and stream limits.
    pub limits: Limits,
    /// The appliance image's upgrade directory (its root helper's reports); `None` on a box
    /// installed from the Debian package, where upgrades come from apt.
    pub upgrade_dir: Option<PathBuf>,
    /// Where `IMAGE_VERSION` (the running image version) is read from.
    pub os_release: PathBuf,
}

impl Options {
    pub fn new(socket: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            data_dir: data_dir.into(),
            hash_cost: HashCost::Standard,
            daemon_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            upgrade_dir: None,
            os_release: PathBuf::from("/etc/os-release"),
        }
    }
}

/// Everything the handlers share.
pub struct Shared {
    pub daemon: daemon::DaemonClient,
    pub users: UserStore,
    pub sessions: Sessions,
    pub keys: KeyStore,
    /// Failed logins (and bad API keys) per client address.
    pub limiter: LoginLimiter,
    /// Failed logins per account name.
    pub account_limiter: LoginLimiter<String>,
    pub hasher: Hasher,
    pub audit: audit::AuditLog,
    pub telemetry: Arc<Telemetry>,
    pub wizard: wizard::WizardStore,
    pub streams: Arc<Semaphore>,
    /// Event streams per user name (or `key:<id>`).
    pub streams_per_principal: KeyedLimit<String>,
    pub upgrade: upgrade::UpgradePaths,
    /// One upgrade request (or upload) is received at a time.
    pub upgrade_submit: tokio::sync::Mutex<()>,
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The application: state, routers for both ports, the poller, shutdown.
pub struct WebApp {
    state: AppState,
    shutdown: watch::Sender<bool>,
    limits: Limits,
    connections: Arc<ConnectionCaps>,
}

impl WebApp {
    /// Open the data directory (created 0700 if missing) and set up the state.
    pub fn new(opts: Options) -> std::io::Result<Self> {
        store::ensure_dir(&opts.data_dir)?;
        let daemon = daemon::DaemonClient::new(&opts.socket, opts.daemon_timeout);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Shared {
            telemetry: Arc::new(Telemetry::new(daemon.clone())),
            daemon,
            users: UserStore::open(&opts.data_dir)?,
            sessions: Sessions::default(),
            keys: KeyStore::open(&opts.data_dir)?,
            limiter: LoginLimiter::default(),
            account_limiter: LoginLimiter::default(),
            hasher: Hasher::new(opts.hash_cost),
            audit: audit::AuditLog::new(&opts.data_dir),
            wizard: wizard::WizardStore::open(&opts.data_dir)?,
            streams: Arc::new(Semaphore::new(opts.limits.max_streams)),
            streams_per_principal: KeyedLimit::new(opts.limits.max_streams_per_principal),
            upgrade: upgrade::UpgradePaths::new(
                &opts.data_dir,
                opts.upgrade_dir.clone(),
                opts.os_release.clone(),
            ),
            upgrade_submit: tokio::sync::Mutex::new(()),
            shutdown: shutdown_rx,
        };
        Ok(Self {
            state: AppState(Arc::new(shared)),
            shutdown,
            connections: Arc::new(ConnectionCaps::new(&opts.limits)),
            limits: opts.limits,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The API port's router: `/api/v1/*` and `/metrics`.
    pub fn api_router(&self) -> Router {
        let table = api_routes();
        let router = table
            .router
            .fallback(|| async { ApiError::NotFound("no such route".into()) })
            .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
            .with_state(self.state.clone());
        harden(router, &self.limits)
    }

    /// The UI port's router: the API plus the embedded UI files.
    pub fn ui_router(&self) -> Router {
        let router = api_routes()
            .router
            .fallback(ui::serve)
            .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
            .with_state(self.state.clone());
        harden(router, &self.limits)
    }

    /// Serve the UI and API ports until [`WebApp::shutdown`], with the connection caps and
    /// timeouts of [`Limits`]; then wait (briefly) for open connections to finish.
    pub async fn run(&self, ui: tokio::net::TcpListener, api: tokio::net::TcpListener) {
        let caps = &self.connections;
        tokio::join!(
            server::serve(
                ui,
                self.ui_router(),
                caps.clone(),
                &self.limits,
                self.shutdown_signal()
            ),
            server::serve(
                api,
                self.api_router(),
                caps.clone(),
                &self.limits,
                self.shutdown_signal()
            ),
        );
        caps.drained().await;
    }

    /// Connections open now (both ports).
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// Start the 1 s status/events poller (ends on [`WebApp::shutdown`]).
    pub fn spawn_poller(&self) -> tokio::task::JoinHandle<()> {
        let telemetry = self.state.telemetry.clone();
        tokio::spawn(telemetry.run(self.state.shutdown.clone()))
    }

    /// Stop the poller and end the event streams.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.state.shutdown.clone()
    }
}

/// The API routes, recorded as they are added so tests can compare them with the OpenAPI
/// document: this is the only place routes are defined.
pub struct RouteTable {
    router: Router<AppState>,
    /// `(METHOD, path)`.
    pub routes: Vec<(String, String)>,
}

impl RouteTable {
    fn new() -> Self {
        Self {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    fn add<H, T>(self, method: &str, path: &str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add_sized(method, path, handler, BODY_LIMIT as u64)
    }

    /// A route whose body may declare up to `max_body` bytes; a larger Content-Length is
    /// refused with 413 before anything is read.
    fn add_sized<H, T>(mut self, method: &str, path: &str, handler: H, max_body: u64) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("unsupported method {other}"),
        };
        let route =
            on(filter, handler).layer(from_fn_with_state(max_body, refuse_declared_oversize));
        self.router = self.router.route(path, route);
        self.routes.push((method.to_string(), path.to_string()));
        self
    }
}

/// Every API route with its handler.
pub fn api_routes() -> RouteTable {
    use api::*;
    RouteTable::new()
        .add("POST", "/api/v1/login", session::login)
        .add("POST", "/api/v1/logout", session::logout)
        .add("GET", "/api/v1/session", session::session)
        .add("GET", "/api/v1/setup", setup::get_setup)
        .add("POST", "/api/v1/setup/password", setup::set_password)
        .add("POST", "/api/v1/setup/apply", setup::apply)
        .add("GET", "/api/v1/status", status::status)
        .add("GET", "/api/v1/events", status::events)
        .add("GET", "/api/v1/history/{wan}", status::history)
        .add("GET", "/api/v1/stream", stream::stream)
        .add("POST", "/api/v1/wans/{wan}/disable", wans::disable)
        .add("POST", "/api/v1/wans/{wan}/enable", wans::enable)
        .add("POST", "/api/v1/wans/{wan}/maintenance", wans::maintenance)
        .add("GET", "/api/v1/wans/{wan}/impact", wans::impact)
        .add("GET", "/api/v1/config", config::get_config)
        .add("PUT", "/api/v1/config", config::put_config)
        .add("POST", "/api/v1/config/confirm", config::confirm)
        .add("GET", "/api/v1/config/history", config::history)
        .add("POST", "/api/v1/config/rollback", config::rollback)
        .add("GET", "/api/v1/users", users::list)
        .add("POST", "/api/v1/users", users::create)
        .add("DELETE", "/api/v1/users/{name}", users::delete)
        .add("GET", "/api/v1/keys", keys::list)
        .add("POST", "/api/v1/keys", keys::create)
        .add("DELETE", "/api/v1/keys/{id}", keys::delete)
        .add("GET", "/api/v1/audit", audit::list)
        .add("GET", "/api/v1/system/upgrade", system::get_upgrade)
        .add("POST", "/api/v1/system/upgrade", system::upgrade_from_url)
        // The bundle (hundreds of MB) is streamed to disk, not buffered: its own limit.
        .add_sized(
            "POST",
            "/api/v1/system/upgrade/bundle",
            system::upgrade_from_upload.layer(DefaultBodyLimit::disable()),
            upgrade::MAX_BUNDLE,
        )
        .add("GET", "/api/v1/openapi.json", openapi::openapi_json)
        .add("GET", "/metrics", metrics::metrics)
}

/// 413 at once for a body that declares more than the route takes, before the upload is
/// read (and before the client spends minutes sending it).
async fn refuse_declared_oversize(
    State(max_body): State<u64>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}

/// Body limit, body read timeout and security headers on every answer. No CORS layer:
/// cross-origin reads are refused by browsers, and cross-origin changes by the Origin check.
fn harden(router: Router, limits: &Limits) -> Router {
    let set = |name, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Run both listeners until SIGTERM/SIGINT.
pub async fn serve(
    opts: Options,
    listen_ui: SocketAddr,
    listen_api: SocketAddr,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let app = WebApp::new(opts).context("cannot open the data directory")?;
    let ui = tokio::net::TcpListener::bind(listen_ui)
        .await
        .with_context(|| format!("cannot listen on {listen_ui}"))?;
    let api = tokio::net::TcpListener::bind(listen_api)
        .await
        .with_context(|| format!("cannot listen on {listen_api}"))?;
    if !ui::has_index() {
        tracing::warn!("no web-ui/index.html was embedded: the UI port serves the API only");
    }
    tracing::info!(ui = %listen_ui, api = %listen_api, "routeros-web listening");
    let poller = app.spawn_poller();
    let signals = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping");
        app.shutdown();
        Ok::<(), std::io::Error>(())
    };
    let ((), signal_result) = tokio::join!(app.run(ui, api), signals);
    signal_result.context("signal handler")?;
    let _ = poller.await;
    Ok(())
}

//! `/metrics` over HTTP/1.1 (hyper) on the collector's tokio runtime. `GET`/`HEAD /metrics`
//! answers with the exporter's series; `/` with a pointer to it; anything else 404 or 405.
//! A scraper that asks for OpenMetrics (`Accept: application/openmetrics-text`, as Prometheus
//! does) gets it, anyone else the Prometheus text format 0.0.4.
//!
//! Hostile clients are bounded: at most [`MAX_CONNECTIONS`] at once (more are closed at
//! accept), request headers must arrive within [`HEADER_TIMEOUT`], a connection lives at most
//! [`CONNECTION_LIFETIME`], and request bodies are never read.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    body::Incoming,
    header::{ACCEPT, ALLOW, CONTENT_TYPE},
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{encoding, registry::Registry};
use tokio::{net::TcpListener, sync::Semaphore};

/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 32;
/// A request's headers must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection (keep-alive included) is closed after this.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// The Prometheus text format's content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics text format's content type.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters of the endpoint.
#[derive(Debug, Default)]
pub struct EndpointCounters {
    /// Connections closed at accept because [`MAX_CONNECTIONS`] were open.
    pub refused: std::sync::atomic::AtomicU64,
}

/// Serves `registry` on `listener` until the runtime shuts down.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    counters: Arc<EndpointCounters>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("bpftop-ordered serve: /metrics accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            counters
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&registry)));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().expect("static header"),
    );
    response
}

/// Whether the request's `Accept` asks for OpenMetrics.
fn wants_openmetrics(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// The registry's series in the requested format.
pub fn render(registry: &Registry, openmetrics: bool) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(16 * 1024);
    if openmetrics {
        encoding::text::encode(&mut text, registry)?;
    } else {
        encoding::prometheus_text::encode(&mut text, registry)?;
    }
    Ok(text)
}

async fn answer(
    request: Request<Incoming>,
    registry: Arc<Registry>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, "GET, HEAD".parse().expect("static header"));
        return Ok(response);
    }
    match request.uri().path() {
        "/metrics" => {}
        "/" => {
            return Ok(plain(
                StatusCode::OK,
                "bpftop-ordered collector: the series are at /metrics\n",
            ))
        }
        _ => {
            return Ok(plain(
                StatusCode::NOT_FOUND,
                "not found: the series are at /metrics\n",
            ))
        }
    }
    let openmetrics = wants_openmetrics(&request);
    // The sample takes the hub's lock and walks the tables: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || render(&registry, openmetrics)).await;
    let Ok(Ok(text)) = rendered else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the series failed\n",
        ));
    };
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(text)
    };
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        if openmetrics {
            OPENMETRICS_TEXT
        } else {
            PROMETHEUS_TEXT
        }
        .parse()
        .expect("static header"),
    );
    Ok(response)
}

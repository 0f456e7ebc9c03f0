//! The OTLP/HTTP (protobuf) trace exporter: a batch span processor sending to
//! `<endpoint>/v1/traces`, with the runtime sampler of [`super::SamplingControl`].

use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::registry::LookupSpan;

use super::sampler::RuntimeSampler;
use super::SamplingControl;

/// What the exporter is built from.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// The OTLP/HTTP base URL (`http://collector:4318`); spans go to `<endpoint>/v1/traces`
    /// (an endpoint that already ends in `/v1/traces` is used as it is).
    pub endpoint: String,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Share of new traces sampled at start (0..=1).
    pub sampling_rate: f64,
    /// Time allowed for one export request.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the OTLP trace exporter: {0}")]
pub struct ExportError(String);

/// The running exporter. [`TraceExport::shutdown`] sends the spans still buffered.
pub struct TraceExport {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    control: SamplingControl,
}

impl TraceExport {
    /// The sampler's switch and rate.
    pub fn control(&self) -> SamplingControl {
        self.control.clone()
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_tracked_inactivity(false)
    }

    /// Flushes the buffered spans and stops the exporter.
    pub fn shutdown(&self) {
        super::set_enabled(false);
        if let Err(e) = self.provider.shutdown() {
            eprintln!("trace exporter shutdown: {e}");
        }
    }
}

/// Starts the exporter and turns propagation on. Must be called inside a Tokio runtime (the
/// export requests run on it).
pub fn install(settings: &ExportSettings) -> Result<TraceExport, ExportError> {
    let endpoint = traces_url(&settings.endpoint);
    let client = TokioHttpClient {
        client: reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| ExportError(e.to_string()))?,
        runtime: tokio::runtime::Handle::try_current().map_err(|e| ExportError(e.to_string()))?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(settings.timeout)
        .with_http_client(client)
        .build()
        .map_err(|e| ExportError(e.to_string()))?;
    let control = SamplingControl::new(true, settings.sampling_rate);
    let resource = Resource::builder_empty()
        .with_service_name(settings.service_name.clone())
        .with_attributes([
            KeyValue::new("service.namespace", "integr8s"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(RuntimeSampler(control.clone()))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("integr8s");
    super::set_enabled(true);
    Ok(TraceExport {
        provider,
        tracer,
        control,
    })
}

/// `<base>/v1/traces`, unless `base` names the traces path already.
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Sends the exporter's requests with the process's HTTP client on its Tokio runtime (the
/// batch processor calls from a thread of its own).
#[derive(Debug, Clone)]
struct TokioHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for TokioHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let sent = self.runtime.spawn(async move {
            let response = client
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        let (status, headers, body) = sent.await.map_err(|e| Box::new(e) as HttpError)??;
        let mut answer = Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}

//! Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or, with
//! `UPLOAD_LOG_FORMAT=json`, one JSON object per line with every field of the
//! event (upload, submission, seller ids, ...) a key of its own; and, when
//! traces are exported, the layer that turns spans into OpenTelemetry spans.

use tracing_subscriber::Layer;
use tracing_subscriber::Registry;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use upload_config::LogFormat;

/// A layer over the registry.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The subscriber that writes `format` to `writer`, with `extra` layers (the
/// OpenTelemetry one) beside it.
pub fn subscriber<W>(
    format: LogFormat,
    writer: W,
    extra: Option<BoxedLayer>,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let mut layers: Vec<BoxedLayer> = vec![match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }];
    layers.extend(extra);
    Box::new(tracing_subscriber::registry().with(layers).with(filter))
}

/// Installs the subscriber for `format` on stderr, for the whole process.
pub fn init_logs(format: LogFormat) {
    let _ = tracing::subscriber::set_global_default(subscriber(format, std::io::stderr, None));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;

        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn json_logs_are_one_object_a_line_with_the_ids_as_keys() {
        let out = Captured::default();
        let sub = subscriber(LogFormat::Json, out.clone(), None);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(upload = "01a2", seller = "s-1", "upload ready");
            tracing::warn!(
                submission = "01b3",
                attempt = 2,
                "job failed; retry scheduled"
            );
        });
        let text =
            String::from_utf8(out.0.lock().map(|b| b.clone()).unwrap_or_default()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["upload"], "01a2");
        assert_eq!(lines[0]["seller"], "s-1");
        assert_eq!(lines[0]["message"], "upload ready");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[1]["submission"], "01b3");
        assert_eq!(lines[1]["attempt"], 2);
    }
}

//! Scrapes of the `/metrics` listeners, read by metric name and labels.

/// One scrape's samples.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The text as served.
    pub text: String,
}

/// GETs a `/metrics` URL.
pub async fn scrape(url: &str) -> Scrape {
    let res = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(res.status().as_u16(), 200, "{url}");
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Scrape {
        text: res.text().await.expect("the scrape's text"),
    }
}

impl Scrape {
    /// The sample of `name` whose labels are exactly `labels` (in any order);
    /// 0 when there is none (a counter never moved is not shown).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        wanted.sort();
        for line in self.text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (metric, mut found) = match series.split_once('{') {
                Some((metric, rest)) => (
                    metric,
                    rest.trim_end_matches('}')
                        .split(',')
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            found.sort();
            if metric == name && found == wanted {
                return value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            }
        }
        0.0
    }
}

//! `docs/metrics.md` lists exactly the catalogue: every metric with its kind and labels.

use integr8s_telemetry::CATALOGUE;

fn documented() -> Vec<(String, String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
    let text = std::fs::read_to_string(path).expect("docs/metrics.md is readable");
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_metrics_document_lists_the_catalogue() {
    let documented = documented();
    let expected: Vec<(String, String, String)> = CATALOGUE
        .iter()
        .map(|spec| {
            let labels = if spec.labels.is_empty() {
                "–".to_owned()
            } else {
                spec.labels.join(", ")
            };
            (spec.name.to_owned(), spec.kind.as_str().to_owned(), labels)
        })
        .collect();
    assert_eq!(
        documented, expected,
        "docs/metrics.md and crates/telemetry/src/catalogue.rs disagree"
    );
}

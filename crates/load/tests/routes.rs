//! The load tool's route table (`template::ROUTES`) lists every path of the API's own OpenAPI
//! document, so no request of a real route is counted as unmatched.

use integr8s_load::template::ROUTES;

#[test]
fn every_documented_path_is_a_route_of_the_load_tool() {
    let document = integr8s_api::openapi::document();
    let paths = document["paths"].as_object().expect("paths");
    let missing: Vec<&String> = paths
        .keys()
        // The console's files: one catch-all route, not an API endpoint to count.
        .filter(|path| !path.starts_with("/console/"))
        .filter(|path| !ROUTES.contains(&path.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from crates/load/src/template.rs: {missing:?}"
    );
    let documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let extra: Vec<&&str> = ROUTES.iter().filter(|r| !documented.contains(r)).collect();
    assert!(
        extra.is_empty(),
        "routes the API does not document: {extra:?}"
    );
}

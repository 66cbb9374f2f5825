//! Index extraction's CPU per resource: the index entries of a feed's vital-sign Observation
//! (the one `bench/mixed.lua` writes), extracted 20,000 times. A micro-benchmark for the write
//! path (`cargo run --release -p fhir-model --example index_extraction`), not a test.

use std::time::Instant;
fn main() {
    let obs: serde_json::Value = serde_json::from_str(r#"{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/pat-000005"},"effectiveDateTime":"2026-12-04T10:00:00Z","valueQuantity":{"value":70,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},"id":"abc","meta":{"versionId":"1","lastUpdated":"2026-12-04T10:00:00Z"}}"#).unwrap();
    let n = fhir_model::index::extract(&obs).len();
    let t = Instant::now();
    let iters = 20000;
    for _ in 0..iters {
        std::hint::black_box(fhir_model::index::extract(std::hint::black_box(&obs)));
    }
    println!(
        "entries={n} extract={:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
}

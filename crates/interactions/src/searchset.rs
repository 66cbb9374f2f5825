//! The searchset Bundle of a page of matches: links (whose cursors are sealed for this search),
//! total, entries and the notices a caller needs (ignored parameters, withheld matches, cut
//! includes). Written out by [`SearchSet::render`], which splices stored bodies in without
//! parsing them when nothing asks to change them.

use chrono::{SecondsFormat, Utc};
use search::text::encode;
use search::SearchPlan;
use serde_json::{json, Value};
use store::{Cursor, FoundResource, ResourcePage};

use crate::error::{internal, Result};
use crate::render::Output;
use crate::services::Settings;

/// Why an entry is in a searchset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// It matched.
    Match,
    /// An `_include`/`_revinclude` brought it.
    Include,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Match => "match",
            Mode::Include => "include",
        }
    }
}

/// A searchset Bundle before it is written out.
pub struct SearchSet {
    /// The Bundle without entries (type, total, links, meta).
    head: Value,
    /// The rows, as stored.
    rows: Vec<(FoundResource, Mode)>,
    /// The `outcome` entry: ignored parameters, withheld matches, cut includes.
    outcome: Option<Value>,
    /// Base URL for `fullUrl`.
    base_url: String,
}

/// The searchset of a page: links, total, entries and the notices the caller needs (`routes`:
/// how the caller may see what was withheld).
#[allow(clippy::too_many_arguments)]
pub(crate) fn searchset(
    settings: &Settings,
    plan: &SearchPlan,
    routes: Vec<&'static str>,
    page: ResourcePage,
    included: Vec<FoundResource>,
    cut: bool,
    self_base: &str,
    output: &Output,
) -> SearchSet {
    let mut head = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)},
        "type": "searchset",
    });
    if let Some(total) = page.total {
        head["total"] = json!(total);
    }
    head["link"] = Value::Array(links(self_base, plan, &page, output));
    let include_limit = settings.search_max_count;
    let mut warnings = Vec::new();
    if !plan.ignored.is_empty() {
        warnings.push(json!({"severity": "warning", "code": "not-supported",
            "diagnostics": format!("Parameters not supported and ignored: {}", plan.ignored.join(", "))}));
    }
    if page.withheld {
        let mut issue = json!({"severity": "information", "code": "suppressed",
            "diagnostics": "Some matching resources were withheld: your organisation has no legitimate relationship with their patient, or they are restricted. Claim a relationship (X-Relationship-Claim: <reason>) or, in an emergency, break glass (X-Purpose-Of-Use: BTG with X-Break-Glass-Reason: <reason>); both are audited and reviewed."});
        if !routes.is_empty() {
            issue["details"] = crate::error::routes_concept(&routes);
        }
        warnings.push(issue);
    }
    if cut {
        warnings.push(json!({"severity": "warning", "code": "too-costly",
            "diagnostics": format!("Only the first {include_limit} included resources are returned")}));
    }
    let outcome = (!warnings.is_empty()).then(|| {
        json!({
            "resource": {"resourceType": "OperationOutcome", "issue": warnings},
            "search": {"mode": "outcome"}
        })
    });
    let rows = page
        .rows
        .into_iter()
        .map(|r| (r, Mode::Match))
        .chain(included.into_iter().map(|r| (r, Mode::Include)))
        .collect();
    SearchSet {
        head,
        rows,
        outcome,
        base_url: settings.base_url.clone(),
    }
}

/// The extension that labels a timeline entry with its event.
pub const TIMELINE_EVENT: &str =
    "https://invicta.example.org/fhir/StructureDefinition/timeline-event";

/// A timeline entry's label: its clinical date, the element that gave it and the organisation
/// whose system sent it (when known); `None` off a timeline.
fn event_label(row: &FoundResource) -> Option<Value> {
    let (at, element) = row.event.as_ref()?;
    let mut parts = vec![
        json!({"url": "date", "valueDateTime": at.to_rfc3339_opts(SecondsFormat::Millis, true)}),
        json!({"url": "element", "valueString": element}),
    ];
    if let Some(org) = &row.org {
        parts.push(json!({"url": "source", "valueIdentifier": {
            "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": org}}));
    }
    Some(json!([{"url": TIMELINE_EVENT, "extension": parts}]))
}

/// [`event_label`] written straight into `out` as `"extension":[…],`, for the verbatim
/// Bundle: built as values, the labels of a `$timeline` page were a tenth of its server time.
fn write_event_label(out: &mut Vec<u8>, row: &FoundResource) -> Result<()> {
    let Some((at, element)) = row.event.as_ref() else {
        return Ok(());
    };
    out.extend_from_slice(b"\"extension\":[{\"url\":");
    serde_json::to_writer(&mut *out, TIMELINE_EVENT).map_err(internal)?;
    out.extend_from_slice(b",\"extension\":[{\"url\":\"date\",\"valueDateTime\":\"");
    out.extend_from_slice(at.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
    out.extend_from_slice(b"\"},{\"url\":\"element\",\"valueString\":");
    serde_json::to_writer(&mut *out, element).map_err(internal)?;
    out.push(b'}');
    if let Some(org) = &row.org {
        out.extend_from_slice(
            b",{\"url\":\"source\",\"valueIdentifier\":{\"system\":\
              \"https://fhir.nhs.uk/Id/ods-organization-code\",\"value\":",
        );
        serde_json::to_writer(&mut *out, org).map_err(internal)?;
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}],");
    Ok(())
}

impl SearchSet {
    /// The patients whose data the entries hold.
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.rows.iter().flat_map(|(r, _)| r.compartments.iter())
    }

    /// The Bundle as a value, each resource subset as `output` asks.
    pub fn to_value(&self, output: &Output) -> Result<Value> {
        let mut bundle = self.head.clone();
        let mut values = Vec::with_capacity(self.rows.len() + 1);
        for (row, mode) in &self.rows {
            let resource: Value = serde_json::from_slice(&row.body).map_err(internal)?;
            let mut entry = json!({
                "fullUrl": format!("{}/{}/{}", self.base_url, row.res_type, row.id),
                "resource": output.subset(&resource),
                "search": {"mode": mode.as_str()},
            });
            if let Some(label) = event_label(row) {
                entry["extension"] = label;
            }
            values.push(entry);
        }
        values.extend(self.outcome.clone());
        if !values.is_empty() {
            bundle["entry"] = Value::Array(values);
        }
        Ok(bundle)
    }

    /// The Bundle written out; stored bodies are copied in as they are when `output` allows.
    pub fn render(&self, output: &Output) -> Result<Vec<u8>> {
        if !output.is_verbatim() {
            return output.render(&self.to_value(output)?);
        }
        if self.rows.is_empty() && self.outcome.is_none() {
            return serde_json::to_vec(&self.head).map_err(internal);
        }
        // Sized once for the bodies and each entry's wrapping, so that a page of bodies is
        // not copied again each time the buffer grows.
        let wrapping = 400 + self.base_url.len();
        let size = self
            .rows
            .iter()
            .map(|(r, _)| r.body.len() + wrapping)
            .sum::<usize>()
            + 2048;
        let mut out = Vec::with_capacity(size);
        serde_json::to_writer(&mut out, &self.head).map_err(internal)?;
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"entry\":[");
        for (i, (row, mode)) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let full_url =
                serde_json::to_string(&format!("{}/{}/{}", self.base_url, row.res_type, row.id))
                    .map_err(internal)?;
            out.push(b'{');
            write_event_label(&mut out, row)?;
            out.extend_from_slice(b"\"fullUrl\":");
            out.extend_from_slice(full_url.as_bytes());
            out.extend_from_slice(b",\"resource\":");
            out.extend_from_slice(&row.body);
            out.extend_from_slice(b",\"search\":{\"mode\":\"");
            out.extend_from_slice(mode.as_str().as_bytes());
            out.extend_from_slice(b"\"}}");
        }
        if let Some(o) = &self.outcome {
            if !self.rows.is_empty() {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, o).map_err(internal)?;
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

fn links(self_base: &str, plan: &SearchPlan, page: &ResourcePage, output: &Output) -> Vec<Value> {
    let mut query: Vec<String> = plan
        .applied
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    query.push(format!("_count={}", plan.count));
    if output.summary == Some(fhir_model::summary::SummaryMode::Count) {
        query.push("_summary=count".into());
    }
    if let Some(e) = &output.elements {
        query.push(format!("_elements={}", encode(&e.join(","))));
    }
    let sep = if self_base.contains('?') { '&' } else { '?' };
    let link = |relation: &str, cursor: Option<(Cursor, bool)>| {
        let mut q = query.clone();
        if let Some((c, backward)) = cursor {
            q.push(format!(
                "_cursor={}",
                plan.cursor_token(page.snapshot, &c, backward)
            ));
        }
        json!({"relation": relation, "url": format!("{self_base}{sep}{}", q.join("&"))})
    };
    let at = |row: &FoundResource, backward: bool| {
        Some((
            Cursor {
                values: row.sort_values.clone(),
                rid: row.rid,
            },
            backward,
        ))
    };
    let here = plan.cursor.clone().map(|c| (c, plan.backward));
    let mut links = vec![link("self", here)];
    // Forward pages have more after them when `more`; backward pages have more before them.
    let (more_after, more_before) = if plan.backward {
        (true, page.more)
    } else {
        (page.more, plan.cursor.is_some())
    };
    if let (true, Some(first)) = (more_before, page.rows.first()) {
        links.push(link("previous", at(first, true)));
    }
    if let (true, Some(last)) = (more_after, page.rows.last()) {
        links.push(link("next", at(last, false)));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, event: Option<&str>, org: Option<&str>) -> FoundResource {
        FoundResource {
            rid: 1,
            res_type: "Observation".into(),
            id: id.into(),
            version: 1,
            last_updated: Utc::now(),
            body: format!(r#"{{"resourceType":"Observation","id":"{id}","status":"final"}}"#)
                .into_bytes(),
            sort_values: Vec::new(),
            compartments: vec!["p1".into()],
            org: org.map(String::from),
            event: event.map(|e| ("2026-01-02T03:04:05.678Z".parse().unwrap(), e.to_string())),
        }
    }

    #[test]
    fn the_written_bundle_is_the_value_written_out() {
        let set = SearchSet {
            head: json!({"resourceType": "Bundle", "type": "searchset", "total": 3}),
            rows: vec![
                (row("a", Some("effective"), Some("A81001")), Mode::Match),
                (row("b", Some("issued \"quoted\""), None), Mode::Match),
                (row("c", None, Some("X")), Mode::Include),
            ],
            outcome: Some(json!({"resource": {"resourceType": "OperationOutcome"},
                "search": {"mode": "outcome"}})),
            base_url: "http://h/fhir".into(),
        };
        let output = Output::default();
        let written: Value = serde_json::from_slice(&set.render(&output).unwrap()).unwrap();
        assert_eq!(written, set.to_value(&output).unwrap());
        let label = &written["entry"][0]["extension"][0];
        assert_eq!(label["url"], TIMELINE_EVENT);
        assert_eq!(label["extension"][2]["valueIdentifier"]["value"], "A81001");
        assert!(written["entry"][2].get("extension").is_none());
    }
}

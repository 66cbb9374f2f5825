//! The patient picker of a clinician's standalone launch (`launch/patient` without an EHR
//! launch): search by NHS number, or family name and date of birth, and pick one. The search and
//! the check that the picked patient is visible run in the HTTP layer through the FHIR
//! interactions under the clinician's own access rules (so only patients they may see are
//! offered, and each search is audited as theirs); this module keeps the request's state and
//! draws the page.

use serde_json::{json, Value};

use crate::authorize::{expired, with_query, BrowserReply};
use crate::pages::{escape, page, refusal};
use crate::person::Person;
use crate::secrets;
use crate::AuthServer;

/// What the clinician searched for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PickerQuery {
    /// An NHS number.
    pub nhs_number: Option<String>,
    /// A family name (with `birthdate`).
    pub family: Option<String>,
    /// A date of birth, `YYYY-MM-DD`.
    pub birthdate: Option<String>,
}

impl PickerQuery {
    /// The FHIR search parameters for the query, or `None` when it is not a complete one.
    pub fn search_params(&self) -> Option<Vec<(String, String)>> {
        if let Some(nhs) = &self.nhs_number {
            let nhs = nhs.replace(' ', "");
            return Some(vec![(
                "identifier".into(),
                format!("https://fhir.nhs.uk/Id/nhs-number|{nhs}"),
            )]);
        }
        match (&self.family, &self.birthdate) {
            (Some(f), Some(b)) => Some(vec![
                ("family".into(), f.clone()),
                ("birthdate".into(), b.clone()),
            ]),
            _ => None,
        }
    }
}

/// A patient the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Logical id.
    pub id: String,
    /// The name to show.
    pub name: String,
    /// Date of birth.
    pub birth_date: Option<String>,
    /// NHS number.
    pub nhs_number: Option<String>,
}

impl Candidate {
    /// A candidate from a Patient resource.
    pub fn from_patient(p: &Value) -> Candidate {
        let name = p["name"]
            .as_array()
            .and_then(|n| n.first())
            .map(|n| {
                let given: Vec<&str> = n["given"]
                    .as_array()
                    .map(|g| g.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                format!(
                    "{} {}",
                    given.join(" "),
                    n["family"].as_str().unwrap_or_default()
                )
                .trim()
                .to_string()
            })
            .unwrap_or_default();
        Candidate {
            id: p["id"].as_str().unwrap_or_default().to_string(),
            name,
            birth_date: p["birthDate"].as_str().map(str::to_string),
            nhs_number: p["identifier"].as_array().and_then(|ids| {
                ids.iter()
                    .find(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
                    .and_then(|i| i["value"].as_str().map(str::to_string))
            }),
        }
    }
}

impl AuthServer {
    /// Whether `request` is waiting for `person` to pick a patient; the reply to send when not.
    pub async fn picker_request(&self, request: &str, person: &Person) -> Result<(), BrowserReply> {
        match self.pending(request).await {
            Some(p) if p.needs_picker(person) => Ok(()),
            Some(_) => Err(BrowserReply::redirect(with_query(
                &format!("{}/consent", self.settings().auth_base),
                &[("request", request)],
            ))),
            None => Err(BrowserReply::page(400, expired())),
        }
    }

    /// The picker page: the search form, and what it found.
    pub fn picker_page(
        &self,
        request: &str,
        session: &str,
        query: &PickerQuery,
        found: Option<&[Candidate]>,
    ) -> BrowserReply {
        let base = escape(&self.settings().auth_base);
        let request_e = escape(request);
        let value = |v: &Option<String>| escape(v.as_deref().unwrap_or_default());
        let mut body = format!(
            "<p>The app asks to open a patient's record. Find the patient: by NHS number, or by \
             family name and date of birth. Only patients you may see are shown.</p>\
             <form method=\"get\" action=\"{base}/pick\">\
             <input type=\"hidden\" name=\"request\" value=\"{request_e}\">\
             <label for=\"nhs_number\">NHS number</label>\
             <input id=\"nhs_number\" name=\"nhs_number\" inputmode=\"numeric\" value=\"{nhs}\">\
             <label for=\"family\">Family name</label><input id=\"family\" name=\"family\" value=\"{family}\">\
             <label for=\"birthdate\">Date of birth (YYYY-MM-DD)</label>\
             <input id=\"birthdate\" name=\"birthdate\" value=\"{birth}\">\
             <button class=\"go\">Search</button></form>",
            nhs = value(&query.nhs_number),
            family = value(&query.family),
            birth = value(&query.birthdate),
        );
        match found {
            None => {}
            Some([]) => body.push_str("<p>No patient you may see matches.</p>"),
            Some(list) => {
                let token = secrets::consent_token(session, request);
                body.push_str("<ul>");
                for c in list {
                    body.push_str(&format!(
                        "<li><form method=\"post\" action=\"{base}/pick\">\
                         <input type=\"hidden\" name=\"request\" value=\"{request_e}\">\
                         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
                         <input type=\"hidden\" name=\"patient\" value=\"{id}\">\
                         <strong>{name}</strong>, born {born}, NHS number {nhs} \
                         <button class=\"go\">Choose</button></form></li>",
                        id = escape(&c.id),
                        name = escape(&c.name),
                        born = escape(c.birth_date.as_deref().unwrap_or("unknown")),
                        nhs = escape(c.nhs_number.as_deref().unwrap_or("unknown")),
                    ));
                }
                body.push_str("</ul>");
            }
        }
        BrowserReply::page(200, page("Choose the patient", &body))
    }

    /// Records the patient picked (the caller has checked the clinician may see them) and goes
    /// on to the consent screen.
    pub async fn pick(
        &self,
        request: &str,
        session: &str,
        csrf: &str,
        patient: &str,
    ) -> BrowserReply {
        if !secrets::same(csrf, &secrets::consent_token(session, request)) {
            return BrowserReply::page(
                403,
                refusal(
                    "This form is not valid",
                    "The form was not the one shown to you, so nothing was chosen.",
                ),
            );
        }
        let Some(mut pending) = self.pending(request).await else {
            return BrowserReply::page(400, expired());
        };
        pending.picked = Some(patient.to_string());
        let store = self.store().clone();
        let (key, text) = (request.to_string(), json!(pending).to_string());
        match crate::blocking(move || store.set_auth_request_params(&key, &text)).await {
            Ok(true) => BrowserReply::redirect(with_query(
                &format!("{}/consent", self.settings().auth_base),
                &[("request", request)],
            )),
            _ => BrowserReply::page(400, expired()),
        }
    }
}

//! The facts of a request-path AuditEvent as the audit trail stores them: typed columns of a
//! narrow row, from which the `audit_resource` view builds the AuditEvent when it is read
//! (migration `audit_narrow_row`). Writing one costs no JSON, no compression and a row a
//! quarter the size of the event.

/// What one AuditEvent says, as the request knew it. The caller (crate `interactions`) maps
/// its audit record here; the SQL that builds the event is pinned to authz's builder by a test
/// that stores every shape of record both ways.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFacts {
    /// The FHIR interaction code (AuditEvent.subtype).
    pub interaction: String,
    /// C, R, U, D or E.
    pub action: String,
    /// 0, 4 or 8.
    pub outcome: String,
    /// Why it failed.
    pub outcome_desc: Option<String>,
    /// The purpose of use in force.
    pub purpose: String,
    /// Break-glass or relationship-claim reason.
    pub review_reason: Option<String>,
    /// The request id.
    pub request_id: String,
    /// The client's network address.
    pub address: Option<String>,
    /// About information withheld from patients.
    pub sensitive: bool,
    /// The caller, when the token was valid.
    pub caller: Option<AuditCaller>,
    /// The patient the event is about.
    pub patient: Option<String>,
    /// The versions read or written, as `Type/id/_history/v`.
    pub resources: Vec<String>,
    /// The query string of a search or history.
    pub query: Option<String>,
}

/// Who made the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditCaller {
    /// The token's subject.
    pub subject: String,
    /// The care-record role.
    pub role: String,
    /// The FHIR user (`Practitioner/…`, `Patient/…` or a URL).
    pub fhir_user: Option<String>,
    /// The user's name.
    pub name: Option<String>,
    /// The organisation's ODS code.
    pub org: Option<String>,
    /// The OAuth client.
    pub client_id: Option<String>,
    /// The token's `jti`.
    pub jti: Option<String>,
}

impl AuditFacts {
    /// The patients whose compartment holds the event: those its agent and entities name.
    pub(crate) fn compartments(&self) -> Vec<String> {
        let agent = self.caller.as_ref().and_then(|c| c.fhir_user.as_deref());
        let mut ids: Vec<String> = agent
            .into_iter()
            .chain(self.resources.iter().map(String::as_str))
            .filter_map(|r| {
                let r = fhir_model::index::parse_reference(r);
                (r.target_type.as_deref() == Some("Patient"))
                    .then_some(r.target_id)
                    .flatten()
            })
            .chain(self.patient.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The event's security labels.
    pub(crate) fn labels(&self) -> Vec<String> {
        if self.sensitive {
            vec!["audit-sensitive".to_string()]
        } else {
            Vec::new()
        }
    }
}

/// `s` as PostgreSQL text can hold it: NUL, which JSON could carry escaped but a text column
/// cannot, becomes U+FFFD, so one odd value never fails a batch of other requests' records.
pub(crate) fn storable(s: &str) -> String {
    s.replace('\0', "\u{fffd}")
}

//! What a write carries besides its body: who writes, the rules it must meet, and how its
//! changes are audited. Both the writes (`write`) and the transaction that queues their audit
//! records (`tx`) need these, so they live apart from either.

use std::sync::Arc;

use fhir_model::AuditAction;

use crate::access::Access;

/// What a write changed, for the AuditEvent recorded with it.
#[derive(Debug, Clone)]
pub struct Change {
    /// Resource type.
    pub res_type: String,
    /// Logical id.
    pub id: String,
    /// The version now current.
    pub version: i32,
    /// Create, update or delete; a write that changed nothing is a read.
    pub action: AuditAction,
    /// The patients whose compartment holds the resource.
    pub compartments: Vec<String>,
    /// The version's security labels (`fhir_model::access::security_labels`).
    pub labels: Vec<String>,
    /// The version's alert codes (`fhir_model::access::alert_codes`).
    pub alerts: Vec<String>,
}

/// Builds the audit trail's rows of the changes one request made, stored in its transaction.
pub type AuditHook = Arc<dyn Fn(&[Change]) -> Vec<crate::AuditRow> + Send + Sync>;

/// Who is writing and what must hold, for one write.
#[derive(Clone, Default)]
pub struct WriteContext {
    /// ODS code of the writer's organisation, kept as the version's `org` and stamped as a
    /// `meta.tag` of the version.
    pub org: Option<String>,
    /// The writer's system (client) as a URI, stamped as the version's `meta.source`.
    pub source: Option<String>,
    /// The request's access rules: the current version (for an update or delete) and the new one
    /// must both meet them, or the transaction rolls back with `Forbidden`.
    pub access: Option<Arc<Access>>,
    /// Record a `source` relationship between `org` and the patients of the new version.
    pub record_source: bool,
    /// The audit record of the write, committed in the same transaction.
    pub audit: Option<AuditHook>,
}

impl std::fmt::Debug for WriteContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteContext")
            .field("org", &self.org)
            .field("source", &self.source)
            .field("access", &self.access)
            .field("record_source", &self.record_source)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

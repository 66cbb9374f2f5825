//! Who is asking, as the transport found them: the verified principal, the emergency headers,
//! and the request's audit record in progress, which interactions complete and the transport
//! writes after answering.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use authz::audit::AuditRecord;
use authz::{Emergency, Principal};

/// The audit record in progress.
#[derive(Default)]
pub struct AuditState {
    /// What will be written.
    pub record: AuditRecord,
    /// The interaction already stored the record (in the transaction of a write).
    pub recorded: bool,
    /// A relationship claim to record for the patients touched.
    pub claim: Option<String>,
}

/// The caller of one request.
#[derive(Clone)]
pub struct Caller {
    /// The verified caller; `None` only when authentication is off (development).
    pub principal: Option<Arc<Principal>>,
    /// A fingerprint of the token, keying the decision cache.
    pub token: u64,
    /// The token's `exp`: no decision about it is cached past that.
    pub token_exp: Option<i64>,
    /// Break-glass and relationship-claim headers.
    pub emergency: Emergency,
    /// The request's audit record, completed by interactions and written by the transport.
    pub audit: Rc<RefCell<AuditState>>,
}

impl Caller {
    /// A caller with a fresh audit record.
    pub fn new(
        principal: Option<Arc<Principal>>,
        token: u64,
        token_exp: Option<i64>,
        emergency: Emergency,
        record: AuditRecord,
    ) -> Caller {
        Caller {
            principal,
            token,
            token_exp,
            emergency,
            audit: Rc::new(RefCell::new(AuditState {
                record,
                ..AuditState::default()
            })),
        }
    }

    /// Names the interaction in the audit record before any decision is made (a Bundle is
    /// `batch` or `transaction` whatever its entries are).
    pub fn name_interaction(
        &self,
        name: fhir_model::RestInteraction,
        action: fhir_model::AuditAction,
    ) {
        let mut a = self.audit.borrow_mut();
        a.record.interaction = name;
        a.record.action = action;
    }
}

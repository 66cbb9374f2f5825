//! R4 code systems the audit trail writes, as types: a misspelt code is a compile error rather
//! than an AuditEvent a reviewer's query never finds.

use std::fmt;

/// R4 `audit-event-action` (AuditEvent.action): what was done to the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `C`: create.
    Create,
    /// `R`: read, view or print (also a conditional write that matched and changed nothing).
    Read,
    /// `U`: update.
    Update,
    /// `D`: delete.
    Delete,
    /// `E`: execute (searches, operations, Bundles).
    Execute,
}

impl AuditAction {
    /// Every action, in the code system's order.
    pub const ALL: [AuditAction; 5] = [
        AuditAction::Create,
        AuditAction::Read,
        AuditAction::Update,
        AuditAction::Delete,
        AuditAction::Execute,
    ];

    /// The code (`C`, `R`, `U`, `D`, `E`).
    pub const fn code(self) -> &'static str {
        match self {
            AuditAction::Create => "C",
            AuditAction::Read => "R",
            AuditAction::Update => "U",
            AuditAction::Delete => "D",
            AuditAction::Execute => "E",
        }
    }

    /// The action with this code.
    pub fn from_code(code: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.code() == code)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// R4 `restful-interaction` (AuditEvent.subtype of a RESTful operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestInteraction {
    /// `read`.
    Read,
    /// `vread`.
    Vread,
    /// `update`.
    Update,
    /// `patch`.
    Patch,
    /// `delete`.
    Delete,
    /// `history-instance`.
    HistoryInstance,
    /// `history-type`.
    HistoryType,
    /// `history-system`.
    HistorySystem,
    /// `create`.
    Create,
    /// `search-type`.
    SearchType,
    /// `search-system`.
    SearchSystem,
    /// `capabilities`.
    Capabilities,
    /// `transaction`.
    Transaction,
    /// `batch`.
    Batch,
    /// `operation`.
    Operation,
}

impl RestInteraction {
    /// The code system's URI.
    pub const SYSTEM: &'static str = "http://hl7.org/fhir/restful-interaction";

    /// Every interaction the audit trail names.
    pub const ALL: [RestInteraction; 15] = [
        RestInteraction::Read,
        RestInteraction::Vread,
        RestInteraction::Update,
        RestInteraction::Patch,
        RestInteraction::Delete,
        RestInteraction::HistoryInstance,
        RestInteraction::HistoryType,
        RestInteraction::HistorySystem,
        RestInteraction::Create,
        RestInteraction::SearchType,
        RestInteraction::SearchSystem,
        RestInteraction::Capabilities,
        RestInteraction::Transaction,
        RestInteraction::Batch,
        RestInteraction::Operation,
    ];

    /// The code (`read`, `search-type`, …).
    pub const fn code(self) -> &'static str {
        match self {
            RestInteraction::Read => "read",
            RestInteraction::Vread => "vread",
            RestInteraction::Update => "update",
            RestInteraction::Patch => "patch",
            RestInteraction::Delete => "delete",
            RestInteraction::HistoryInstance => "history-instance",
            RestInteraction::HistoryType => "history-type",
            RestInteraction::HistorySystem => "history-system",
            RestInteraction::Create => "create",
            RestInteraction::SearchType => "search-type",
            RestInteraction::SearchSystem => "search-system",
            RestInteraction::Capabilities => "capabilities",
            RestInteraction::Transaction => "transaction",
            RestInteraction::Batch => "batch",
            RestInteraction::Operation => "operation",
        }
    }

    /// The interaction with this code.
    pub fn from_code(code: &str) -> Option<RestInteraction> {
        RestInteraction::ALL.into_iter().find(|i| i.code() == code)
    }
}

impl fmt::Display for RestInteraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_r4s_and_round_trip() {
        let actions: Vec<&str> = AuditAction::ALL.iter().map(|a| a.code()).collect();
        assert_eq!(actions, ["C", "R", "U", "D", "E"]);
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.code()), Some(a));
        }
        let interactions: Vec<&str> = RestInteraction::ALL.iter().map(|i| i.code()).collect();
        assert_eq!(
            interactions,
            [
                "read",
                "vread",
                "update",
                "patch",
                "delete",
                "history-instance",
                "history-type",
                "history-system",
                "create",
                "search-type",
                "search-system",
                "capabilities",
                "transaction",
                "batch",
                "operation"
            ]
        );
        for i in RestInteraction::ALL {
            assert_eq!(RestInteraction::from_code(i.code()), Some(i));
            assert_eq!(i.to_string(), i.code());
        }
        assert_eq!(RestInteraction::from_code("search"), None);
        assert_eq!(AuditAction::from_code("X"), None);
    }
}

//! Diesel's view of the tables that hot paths query with the typed DSL. Typed queries are
//! prepared once per connection and cached; dynamic search SQL never is (see `sql`).

diesel::table! {
    /// Current version of each resource.
    resource (rid) {
        rid -> BigInt,
        res_type -> Text,
        id -> Text,
        version -> Integer,
        last_updated -> Timestamptz,
        deleted -> Bool,
        body -> Nullable<Bytea>,
        compartments -> Array<Text>,
        sec_labels -> Array<Text>,
        alert_codes -> Array<Text>,
        org -> Nullable<Text>,
    }
}

diesel::table! {
    /// Every version of each resource.
    resource_history (res_type, id, version) {
        hid -> BigInt,
        rid -> BigInt,
        res_type -> Text,
        id -> Text,
        version -> Integer,
        last_updated -> Timestamptz,
        deleted -> Bool,
        method -> Text,
        body -> Nullable<Bytea>,
        compartments -> Array<Text>,
        sec_labels -> Array<Text>,
        alert_codes -> Array<Text>,
        org -> Nullable<Text>,
    }
}

diesel::table! {
    /// Legitimate relationships between organisations and patients.
    care_relationship (patient_id, org_code, kind) {
        patient_id -> Text,
        org_code -> Text,
        kind -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

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
    }
}

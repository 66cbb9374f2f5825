//! `invicta keys …` and `invicta client …`: operator commands over the authorization server's
//! tables, and the clients file registered at every start. Run them with the server's settings.

use std::sync::Arc;

use auth_server::{Client, ClientSpec, KeyRing};
use authz::Policy;
use store::Store;

use crate::cli::{ClientAddArgs, ClientCommand, KeysCommand};

/// Runs `invicta keys …`.
pub fn keys(store: &Store, command: &KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Rotate => {
            let key = KeyRing::rotate(store)?;
            println!(
                "new signing key {}; the previous keys stay valid for tokens they signed until those expire",
                key.kid()
            );
        }
        KeysCommand::List => {
            let keys = store
                .signing_keys(auth_server::settings::KEY_GRACE_SECS)
                .map_err(|e| format!("cannot read the signing keys: {e}"))?;
            for (i, k) in keys.iter().enumerate() {
                let state = match (i, k.retired_at) {
                    (0, None) => "signing".to_string(),
                    (_, Some(at)) => format!("retired {}", at.to_rfc3339()),
                    (_, None) => "published".to_string(),
                };
                println!(
                    "{}\t{}\tcreated {}\t{state}",
                    k.kid,
                    k.alg,
                    k.created_at.to_rfc3339()
                );
            }
        }
    }
    Ok(())
}

/// Runs `invicta client …`.
pub fn client(store: &Store, policy: &Policy, command: &ClientCommand) -> Result<(), String> {
    let db = |e: store::StoreError| format!("database: {e}");
    match command {
        ClientCommand::Add(args) => {
            let spec = spec_of(args)?;
            let (client, secret) = Client::register(spec, policy)?;
            if !store
                .put_client(&client.to_record(), args.replace)
                .map_err(db)?
            {
                return Err(format!(
                    "a client '{}' is already registered (--replace overwrites it)",
                    client.id
                ));
            }
            println!("registered client {}", client.id);
            if let Some(secret) = secret {
                println!("client secret (shown once, store it now): {secret}");
            }
        }
        ClientCommand::List => {
            for r in store.clients().map_err(db)? {
                println!("{}\t{}\t{}\t{}", r.id, r.kind, r.name, r.scopes);
            }
        }
        ClientCommand::Show { id } => {
            let record = store
                .client(id)
                .map_err(db)?
                .ok_or_else(|| format!("no client '{id}'"))?;
            let client = Client::from_record(record)?;
            let text = serde_json::to_string_pretty(&client.to_spec())
                .map_err(|e| format!("cannot print the client: {e}"))?;
            println!("{text}");
        }
        ClientCommand::Remove { id } => {
            if !store.remove_client(id).map_err(db)? {
                return Err(format!("no client '{id}'"));
            }
            println!("removed client {id}");
        }
    }
    Ok(())
}

fn spec_of(args: &ClientAddArgs) -> Result<ClientSpec, String> {
    let jwks = match &args.jwks {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--jwks {}: {e}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| format!("--jwks {}: not JSON: {e}", path.display()))?,
            )
        }
        None => None,
    };
    Ok(ClientSpec {
        id: args.id.clone(),
        name: args.name.clone(),
        kind: args.kind.clone(),
        redirect_uris: args.redirect_uris.clone(),
        scope: args.scope.clone(),
        launch_url: args.launch_url.clone(),
        jwks,
        jwks_url: args.jwks_url.clone(),
        secret_hash: None,
        role: args.role.clone(),
        org: args.org.clone(),
    })
}

/// Registers (or updates) every client of the clients file.
pub fn register_file(
    store: &Store,
    policy: &Arc<Policy>,
    path: &std::path::Path,
) -> Result<usize, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("clients file {}: {e}", path.display()))?;
    let clients = auth_server::clients::read_clients_file(&text, policy)
        .map_err(|e| format!("clients file {}: {e}", path.display()))?;
    for c in &clients {
        store
            .put_client(&c.to_record(), true)
            .map_err(|e| format!("clients file {}: {e}", path.display()))?;
    }
    Ok(clients.len())
}

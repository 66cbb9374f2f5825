//! Tests of token verification with real keys and signatures; external issuers are served by a
//! small HTTP server on 127.0.0.1.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

const AUDIENCE: &str = "https://fhir.example.org/R4";
const OWN_ISSUER: &str = "https://fhir.example.org/auth";

/// A 2048-bit RSA key made for these tests with `openssl genrsa -traditional 2048`.
const RSA_PRIVATE_PEM: &str = include_str!("test_rsa_private.pem");
const RSA_PUBLIC_PEM: &str = include_str!("test_rsa_public.pem");

fn now() -> i64 {
    unix_now()
}

fn own_config(key: &SigningKey) -> VerifierConfig {
    VerifierConfig {
        audience: AUDIENCE.into(),
        own_issuer: OWN_ISSUER.into(),
        own_keys: vec![key.clone()],
        external_issuers: vec![],
        leeway: Duration::from_secs(60),
    }
}

fn claims(iss: &str) -> Value {
    json!({
        "iss": iss,
        "sub": "Practitioner/123",
        "aud": AUDIENCE,
        "exp": now() + 300,
        "scope": "user/*.rs",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with a hand-written header, signed by `key` with `alg` (or with `signature` as is).
fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{signature}")
}

/// Signs with jsonwebtoken's own header handling.
fn encode(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

async fn refused(verifier: &Verifier, token: &str) -> TokenError {
    match verifier.verify(token).await {
        Ok(claims) => panic!("accepted: {claims:?}"),
        Err(e) => e,
    }
}

/// The own key's public key as SPKI PEM, the classic HMAC-confusion "secret".
fn public_pem(key: &SigningKey) -> String {
    let jwk = key.public_jwk();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    p256::PublicKey::from_sec1_bytes(&point)
        .unwrap()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap()
}

#[test]
fn verifier_is_shareable() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Verifier>();
    shareable::<SigningKey>();
}

#[tokio::test]
async fn own_key_round_trip_and_cache() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let token = key.sign(&claims(OWN_ISSUER)).unwrap();
    let first = verifier.verify(&token).await.unwrap();
    assert_eq!(first["sub"], "Practitioner/123");
    assert_eq!(first["scope"], "user/*.rs");
    let second = verifier.verify(&token).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second use is a cache hit"
    );
    assert_eq!(verifier.inner.cache.len(), 1);

    // The header is what the API promises.
    let header = decode_object(token.split('.').next().unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], key.kid());

    // Not a JSON object: refused, not signed.
    assert!(matches!(
        key.sign(&json!(["a"])),
        Err(TokenError::Signing(_))
    ));
}

#[tokio::test]
async fn token_without_kid_uses_the_only_key() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let encoding = own_encoding_key(&key);
    let token = encode(Algorithm::ES256, None, &claims(OWN_ISSUER), &encoding);
    assert!(verifier.verify(&token).await.is_ok());
}

/// The own key's private half, for signing hand-made headers with it.
fn own_encoding_key(key: &SigningKey) -> EncodingKey {
    key.encoding_key()
}

/// A token naming `kid`, with a bogus signature: enough for tests that never reach the
/// signature check, and cheap enough to make hundreds of inside a rate-limit window.
fn unsigned(alg: &str, kid: &str, claims: &Value) -> String {
    format!(
        "{}.{}.c2ln",
        b64(json!({"alg": alg, "kid": kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

#[test]
fn kid_is_the_rfc7638_thumbprint_and_jwk_is_complete() {
    let key = SigningKey::generate();
    let jwk_value = key.public_jwk();
    for member in ["kty", "crv", "x", "y", "kid", "use", "alg"] {
        assert!(jwk_value.get(member).is_some(), "{member}");
    }
    assert_eq!(jwk_value["kty"], "EC");
    assert_eq!(jwk_value["crv"], "P-256");
    assert_eq!(jwk_value["use"], "sig");
    assert_eq!(jwk_value["alg"], "ES256");
    assert_eq!(jwk_value["kid"], key.kid());
    // jsonwebtoken's independent RFC 7638 implementation agrees.
    let jwk: Jwk = serde_json::from_value(jwk_value).unwrap();
    assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid());
    assert_eq!(key.kid().len(), 43);
}

#[test]
fn load_or_create_makes_a_private_key_file_once() {
    let dir = std::env::temp_dir().join(format!("invicta-token-test-{}", b64(&rand_bytes())));
    let path = dir.join("nested/keys/signing.pem");
    let created = SigningKey::load_or_create(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let loaded = SigningKey::load_or_create(&path).unwrap();
    assert_eq!(created.kid(), loaded.kid());
    // No temporary file is left behind.
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );

    std::fs::write(&path, "not a key").unwrap();
    assert!(matches!(
        SigningKey::load_or_create(&path),
        Err(TokenError::KeyFile(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn rand_bytes() -> [u8; 12] {
    let mut bytes = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes
}

#[tokio::test]
async fn alg_none_is_refused() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "none", "typ": "JWT", "kid": key.kid()})
            .to_string()
            .as_bytes()),
        b64(claims(OWN_ISSUER).to_string().as_bytes())
    );
    for token in [format!("{input}."), format!("{input}.c2ln")] {
        let e = refused(&verifier, &token).await;
        assert!(
            matches!(&e, TokenError::UnsupportedAlgorithm(a) if a == "none"),
            "{e:?}"
        );
    }
    // Other spellings and families too.
    for alg in [
        "None", "NONE", "PS256", "EdDSA", "RS512", "HS512", "\u{0}\n",
    ] {
        let header = json!({"alg": alg, "kid": key.kid()});
        let token = format!(
            "{}.{}.c2ln",
            b64(header.to_string().as_bytes()),
            b64(claims(OWN_ISSUER).to_string().as_bytes())
        );
        assert!(matches!(
            refused(&verifier, &token).await,
            TokenError::UnsupportedAlgorithm(_)
        ));
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let jwk = key.public_jwk();
    let secrets = [
        public_pem(&key).into_bytes(),
        jwk.to_string().into_bytes(),
        serde_json::to_vec(&JwkSet {
            keys: vec![serde_json::from_value(jwk.clone()).unwrap()],
        })
        .unwrap(),
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
    ];
    for secret in secrets {
        let token = encode(
            Algorithm::HS256,
            Some(key.kid()),
            &claims(OWN_ISSUER),
            &EncodingKey::from_secret(&secret),
        );
        let e = refused(&verifier, &token).await;
        assert!(
            matches!(&e, TokenError::UnsupportedAlgorithm(a) if a == "HS256"),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn expiry_and_not_before_with_leeway() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let sign = |c: Value| key.sign(&c).unwrap();
    let base = claims(OWN_ISSUER);

    let e = refused(
        &verifier,
        &sign(with(base.clone(), "exp", json!(now() - 120))),
    )
    .await;
    assert!(matches!(e, TokenError::Expired), "{e:?}");
    // Expired less than the leeway ago: accepted.
    let token = sign(with(base.clone(), "exp", json!(now() - 30)));
    assert!(verifier.verify(&token).await.is_ok());
    // Fractional NumericDate.
    let token = sign(with(base.clone(), "exp", json!(now() as f64 + 100.5)));
    assert!(verifier.verify(&token).await.is_ok());

    let e = refused(
        &verifier,
        &sign(with(base.clone(), "nbf", json!(now() + 600))),
    )
    .await;
    assert!(matches!(e, TokenError::NotYetValid), "{e:?}");
    let token = sign(with(base.clone(), "nbf", json!(now() + 30)));
    assert!(verifier.verify(&token).await.is_ok());

    let e = refused(&verifier, &sign(without(base.clone(), "exp"))).await;
    assert!(matches!(e, TokenError::MissingClaim("exp")), "{e:?}");
    for bad in [json!("soon"), json!(null), json!([1]), json!(true)] {
        let e = refused(&verifier, &sign(with(base.clone(), "exp", bad))).await;
        assert!(matches!(e, TokenError::InvalidClaim("exp")), "{e:?}");
    }
    let e = refused(&verifier, &sign(with(base.clone(), "nbf", json!("x")))).await;
    assert!(matches!(e, TokenError::InvalidClaim("nbf")), "{e:?}");
    // Absurd values do not overflow.
    let e = refused(&verifier, &sign(with(base.clone(), "exp", json!(-1e300)))).await;
    assert!(matches!(e, TokenError::Expired), "{e:?}");
    let token = sign(with(base.clone(), "exp", json!(u64::MAX)));
    assert!(verifier.verify(&token).await.is_ok());
    let e = refused(&verifier, &sign(with(base, "nbf", json!(1e300)))).await;
    assert!(matches!(e, TokenError::NotYetValid), "{e:?}");
}

#[tokio::test]
async fn leeway_is_clamped_to_five_minutes() {
    let key = SigningKey::generate();
    let mut config = own_config(&key);
    config.leeway = Duration::from_secs(86_400);
    let verifier = Verifier::new(config);
    let token = key
        .sign(&with(claims(OWN_ISSUER), "exp", json!(now() - 1_000)))
        .unwrap();
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::Expired
    ));
}

#[tokio::test]
async fn issuer_and_audience() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let sign = |c: Value| key.sign(&c).unwrap();

    for iss in [
        json!("https://evil.example"),
        json!(format!("{OWN_ISSUER}/")),
    ] {
        let e = refused(&verifier, &sign(with(claims(OWN_ISSUER), "iss", iss))).await;
        assert!(matches!(e, TokenError::UnknownIssuer), "{e:?}");
    }
    let e = refused(&verifier, &sign(without(claims(OWN_ISSUER), "iss"))).await;
    assert!(matches!(e, TokenError::MissingClaim("iss")), "{e:?}");
    let e = refused(
        &verifier,
        &sign(with(claims(OWN_ISSUER), "iss", json!([OWN_ISSUER]))),
    )
    .await;
    assert!(matches!(e, TokenError::InvalidClaim("iss")), "{e:?}");

    for aud in [
        json!("https://other.example/fhir"),
        json!(format!("{AUDIENCE}/")),
        json!(["https://other.example/fhir"]),
        json!([]),
    ] {
        let e = refused(&verifier, &sign(with(claims(OWN_ISSUER), "aud", aud))).await;
        assert!(matches!(e, TokenError::WrongAudience), "{e:?}");
    }
    let e = refused(&verifier, &sign(without(claims(OWN_ISSUER), "aud"))).await;
    assert!(matches!(e, TokenError::MissingClaim("aud")), "{e:?}");
    let e = refused(&verifier, &sign(with(claims(OWN_ISSUER), "aud", json!(7)))).await;
    assert!(matches!(e, TokenError::InvalidClaim("aud")), "{e:?}");

    let aud = json!(["https://other.example/fhir", AUDIENCE]);
    let token = sign(with(claims(OWN_ISSUER), "aud", aud));
    assert!(verifier.verify(&token).await.is_ok());

    // A verifier without its own key trusts no token claiming its issuer.
    let mut config = own_config(&key);
    config.own_keys = Vec::new();
    let keyless = Verifier::new(config);
    let e = refused(&keyless, &sign(claims(OWN_ISSUER))).await;
    assert!(matches!(e, TokenError::UnknownIssuer), "{e:?}");
}

#[tokio::test]
async fn unknown_kid_and_foreign_keys() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let encoding = own_encoding_key(&key);
    let token = encode(
        Algorithm::ES256,
        Some("nope"),
        &claims(OWN_ISSUER),
        &encoding,
    );
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::UnknownKey
    ));
    // Another key, honestly named: unknown.
    let other = SigningKey::generate();
    let token = other.sign(&claims(OWN_ISSUER)).unwrap();
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::UnknownKey
    ));
    // Another key claiming the server's kid: the signature fails.
    let token = encode(
        Algorithm::ES256,
        Some(key.kid()),
        &claims(OWN_ISSUER),
        &own_encoding_key(&other),
    );
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::BadSignature
    ));
    // ES384 named against the ES256 key.
    let header = json!({"alg": "ES384", "typ": "JWT", "kid": key.kid()});
    let p384 = p384_key();
    let token = forge(&header, &claims(OWN_ISSUER), &p384.0, Algorithm::ES384);
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::AlgorithmMismatch
    ));
    // A key carried in the token itself is ignored.
    let header = json!({"alg": "ES256", "kid": other.kid(), "jwk": other.public_jwk()});
    let token = forge(
        &header,
        &claims(OWN_ISSUER),
        &own_encoding_key(&other),
        Algorithm::ES256,
    );
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::UnknownKey
    ));
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let token = key.sign(&claims(OWN_ISSUER)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = decode_object(parts[1]).unwrap();
    payload.insert("sub".into(), json!("Practitioner/999"));
    let payload = b64(Value::Object(payload).to_string().as_bytes());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert!(matches!(
        refused(&verifier, &tampered).await,
        TokenError::BadSignature
    ));
    // A flipped signature bit, and a truncated signature.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert!(matches!(
        refused(&verifier, &flipped).await,
        TokenError::BadSignature
    ));
    let truncated = format!("{}.{}.{}", parts[0], parts[1], b64(&sig[..40]));
    assert!(matches!(
        refused(&verifier, &truncated).await,
        TokenError::BadSignature
    ));
    // The untouched token still passes.
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn garbage_never_panics() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let token = key.sign(&claims(OWN_ISSUER)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let obj = |v: Value| b64(v.to_string().as_bytes());
    let malformed = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b".into(),
        "a.b.c".into(),
        "Bearer x".into(),
        "é.è.ê".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}", obj(json!({"alg": "ES256"})), "e30"),
        format!("{}.{}.x", obj(json!(["ES256"])), parts[1]),
        format!("{}.{}.x", obj(json!({"alg": 256})), parts[1]),
        format!("{}.{}.x", obj(json!({"typ": "JWT"})), parts[1]),
        format!("{}.{}.x", obj(json!({"alg": "ES256", "kid": 5})), parts[1]),
        format!(
            "{}.{}.x",
            obj(json!({"alg": "ES256", "crit": ["exp"]})),
            parts[1]
        ),
        format!("{}.{}.x", parts[0], b64(b"not json")),
        format!("{}.{}.x", parts[0], obj(json!("a string"))),
        format!("{}.{}.x", parts[0], b64(&[b'['; 10_000])),
    ];
    for token in &malformed {
        let e = refused(&verifier, token).await;
        assert!(matches!(e, TokenError::Malformed), "{token:?}: {e:?}");
    }
    // Random bytes and random dotted base64: refused somehow, never a panic.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2_000 {
        let len = (next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let text = if round % 2 == 0 {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let cut = (next() as usize % (len + 1), next() as usize % (len + 1));
            let (a, b) = (cut.0.min(cut.1), cut.0.max(cut.1));
            format!(
                "{}.{}.{}",
                b64(&bytes[..a]),
                b64(&bytes[a..b]),
                b64(&bytes[b..])
            )
        };
        assert!(verifier.verify(&text).await.is_err());
    }
    // Valid header and payload with a random signature.
    for _ in 0..200 {
        let sig: Vec<u8> = (0..64).map(|_| next() as u8).collect();
        let token = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
        assert!(matches!(
            refused(&verifier, &token).await,
            TokenError::BadSignature
        ));
    }
}

#[tokio::test]
async fn oversize_token_is_malformed() {
    let key = SigningKey::generate();
    let verifier = Verifier::new(own_config(&key));
    let padding = "x".repeat(MAX_TOKEN_LEN);
    let token = key
        .sign(&with(claims(OWN_ISSUER), "padding", json!(padding)))
        .unwrap();
    assert!(token.len() > MAX_TOKEN_LEN);
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::Malformed
    ));
    // Just under the limit is fine.
    let padding = "x".repeat(11_000);
    let token = key
        .sign(&with(claims(OWN_ISSUER), "padding", json!(padding)))
        .unwrap();
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&"a".repeat(10_000_000)).await.is_err());
}

#[test]
fn messages_do_not_echo_the_token() {
    let alg = "x".repeat(1_000) + "\n";
    let e = TokenError::UnsupportedAlgorithm(printable(&alg));
    assert!(e.to_string().len() < 100);
    assert!(!e.to_string().contains('\n'));
}

// ---- external issuers -------------------------------------------------------------------------

/// A P-384 key pair: the private key for jsonwebtoken and its public JWK.
fn p384_key() -> (EncodingKey, Jwk) {
    use p384::pkcs8::EncodePrivateKey as _;
    let secret = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    let encoding = EncodingKey::from_ec_der(der.as_bytes());
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES384).unwrap();
    (encoding, jwk)
}

fn named(mut jwk: Jwk, kid: &str) -> Jwk {
    jwk.common.key_id = Some(kid.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk
}

/// What the test identity provider serves and has been asked.
struct IdP {
    issuer: String,
    jwks: Mutex<JwkSet>,
    /// The issuer its discovery document states (normally `issuer`).
    stated_issuer: Mutex<Option<String>>,
    failing: AtomicBool,
    discovery_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
}

impl IdP {
    async fn start(keys: Vec<Jwk>) -> Arc<IdP> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let idp = Arc::new(IdP {
            issuer,
            jwks: Mutex::new(JwkSet { keys }),
            stated_issuer: Mutex::new(None),
            failing: AtomicBool::new(false),
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
        });
        let server = Arc::clone(&idp);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = Arc::clone(&server);
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        idp
    }

    fn set_keys(&self, keys: Vec<Jwk>) {
        *self.jwks.lock().unwrap() = JwkSet { keys };
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.discovery_requests.load(Ordering::SeqCst),
            self.jwks_requests.load(Ordering::SeqCst),
        )
    }

    /// One HTTP/1.1 exchange, then the connection is closed.
    async fn serve(&self, mut stream: tokio::net::TcpStream) {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16_384 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let request = String::from_utf8_lossy(&request);
        let path = request.split(' ').nth(1).unwrap_or("");
        let (status, body) = match path {
            "/.well-known/openid-configuration" => {
                self.discovery_requests.fetch_add(1, Ordering::SeqCst);
                if self.failing.load(Ordering::SeqCst) {
                    ("500 Internal Server Error", "{}".to_string())
                } else {
                    let stated = self.stated_issuer.lock().unwrap().clone();
                    let iss = &self.issuer;
                    let doc = json!({
                        "issuer": stated.as_deref().unwrap_or(iss),
                        "authorization_endpoint": format!("{iss}/authorize"),
                        "token_endpoint": format!("{iss}/token"),
                        "jwks_uri": format!("{iss}/jwks"),
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256", "ES384"],
                    });
                    ("200 OK", doc.to_string())
                }
            }
            "/jwks" => {
                self.jwks_requests.fetch_add(1, Ordering::SeqCst);
                let jwks = serde_json::to_string(&*self.jwks.lock().unwrap()).unwrap();
                ("200 OK", jwks)
            }
            _ => ("404 Not Found", "{}".to_string()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

fn external_config(issuer: &str) -> VerifierConfig {
    VerifierConfig {
        audience: AUDIENCE.into(),
        own_issuer: OWN_ISSUER.into(),
        own_keys: vec![SigningKey::generate()],
        external_issuers: vec![issuer.into()],
        leeway: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_es384_issuer_rotation_and_refresh_rate_limit() {
    let (key1, jwk1) = p384_key();
    let (key2, jwk2) = p384_key();
    let idp = IdP::start(vec![named(jwk1.clone(), "k1")]).await;
    let window = Duration::from_millis(1_500);
    let verifier = Verifier::with_intervals(external_config(&idp.issuer), window, window);
    assert_eq!(idp.counts(), (0, 0), "nothing is fetched before first use");

    let token1 = encode(Algorithm::ES384, Some("k1"), &claims(&idp.issuer), &key1);
    let verified = verifier.verify(&token1).await.unwrap();
    assert_eq!(verified["iss"], idp.issuer.as_str());
    assert_eq!(idp.counts(), (1, 1));

    // A flood of unknown kids right after the fetch: refused without asking the IdP again.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let verifier = verifier.clone();
        let token = unsigned("ES384", &format!("random-{i}"), &claims(&idp.issuer));
        tasks.push(tokio::spawn(async move { verifier.verify(&token).await }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Err(TokenError::UnknownKey)));
    }
    assert_eq!(idp.counts(), (1, 1));

    // Rotation: the IdP adds k2. Within the window a k2 token is not yet known...
    idp.set_keys(vec![named(jwk1, "k1"), named(jwk2, "k2")]);
    let token2 = encode(Algorithm::ES384, Some("k2"), &claims(&idp.issuer), &key2);
    assert!(matches!(
        refused(&verifier, &token2).await,
        TokenError::UnknownKey
    ));
    assert_eq!(idp.counts(), (1, 1));
    // ...after it, one refetch finds it.
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert!(verifier.verify(&token2).await.is_ok());
    assert_eq!(idp.counts(), (1, 2), "a refresh fetches the JWKS only");

    // The window has restarted: a second flood causes no fetch; after the window, a flood of
    // concurrent unknown kids causes exactly one.
    for round in 0..2 {
        if round == 1 {
            tokio::time::sleep(window + Duration::from_millis(100)).await;
        }
        let mut tasks = Vec::new();
        for i in 0..100 {
            let verifier = verifier.clone();
            let token = unsigned("ES384", &format!("flood-{round}-{i}"), &claims(&idp.issuer));
            tasks.push(tokio::spawn(async move { verifier.verify(&token).await }));
        }
        for task in tasks {
            assert!(matches!(task.await.unwrap(), Err(TokenError::UnknownKey)));
        }
        assert_eq!(idp.counts(), (1, 2 + round));
    }
    // Known keys keep working throughout, and a k1 token forged with k2's key fails.
    let fresh1 = encode(Algorithm::ES384, Some("k1"), &claims(&idp.issuer), &key1);
    assert!(verifier.verify(&fresh1).await.is_ok());
    let forged = encode(Algorithm::ES384, Some("k1"), &claims(&idp.issuer), &key2);
    assert!(matches!(
        refused(&verifier, &forged).await,
        TokenError::BadSignature
    ));
    // With two keys, a token without kid is not accepted.
    let no_kid = encode(Algorithm::ES384, None, &claims(&idp.issuer), &key1);
    assert!(matches!(
        refused(&verifier, &no_kid).await,
        TokenError::UnknownKey
    ));
}

#[tokio::test]
async fn external_rs256_issuer_and_algorithm_confusion() {
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap();
    // Without `alg`: RS256 and RS384 are both what an RSA key implies.
    let mut open = named(
        Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap(),
        "rsa-any",
    );
    open.common.key_algorithm = None;
    // With `alg: RS256`: only RS256.
    let pinned = named(
        Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap(),
        "rsa-256",
    );
    assert_eq!(pinned.common.key_algorithm, Some(KeyAlgorithm::RS256));
    let idp = IdP::start(vec![open, pinned]).await;
    let verifier = Verifier::new(external_config(&idp.issuer));
    let c = claims(&idp.issuer);

    for (alg, kid) in [
        (Algorithm::RS256, "rsa-any"),
        (Algorithm::RS384, "rsa-any"),
        (Algorithm::RS256, "rsa-256"),
    ] {
        let token = encode(alg, Some(kid), &c, &rsa);
        assert!(verifier.verify(&token).await.is_ok(), "{alg:?} {kid}");
    }
    let token = encode(Algorithm::RS384, Some("rsa-256"), &c, &rsa);
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::AlgorithmMismatch
    ));
    // The RSA/HMAC confusion: HS256 keyed with the RSA public key is refused outright.
    for secret in [RSA_PUBLIC_PEM.as_bytes(), RSA_PUBLIC_PEM.trim().as_bytes()] {
        let token = encode(
            Algorithm::HS256,
            Some("rsa-256"),
            &c,
            &EncodingKey::from_secret(secret),
        );
        let e = refused(&verifier, &token).await;
        assert!(
            matches!(&e, TokenError::UnsupportedAlgorithm(a) if a == "HS256"),
            "{e:?}"
        );
    }
    // PS256 with the same RSA key is refused.
    let token = encode(Algorithm::PS256, Some("rsa-256"), &c, &rsa);
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::UnsupportedAlgorithm(_)
    ));
    // An external issuer cannot mint tokens for the own issuer or another one.
    let token = encode(Algorithm::RS256, Some("rsa-256"), &claims(OWN_ISSUER), &rsa);
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::UnknownKey
    ));
    assert_eq!(idp.counts(), (1, 1));
}

#[tokio::test]
async fn discovery_failures_are_lazy_rate_limited_and_retried() {
    let (key, jwk) = p384_key();
    let idp = IdP::start(vec![named(jwk, "k1")]).await;
    idp.failing.store(true, Ordering::SeqCst);
    let retry = Duration::from_millis(800);
    // Construction never touches the network, even for an IdP that is down.
    let verifier = Verifier::with_intervals(external_config(&idp.issuer), retry, retry);
    let token = encode(Algorithm::ES384, Some("k1"), &claims(&idp.issuer), &key);

    let e = refused(&verifier, &token).await;
    assert!(matches!(&e, TokenError::Discovery(_)), "{e:?}");
    assert!(e.to_string().contains("500"), "{e}");
    let e = refused(&verifier, &token).await;
    assert!(matches!(e, TokenError::Discovery(_)), "{e:?}");
    assert_eq!(idp.counts(), (1, 0), "retries are rate limited");

    idp.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(retry + Duration::from_millis(100)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(idp.counts(), (2, 1));
}

#[tokio::test]
async fn discovery_document_must_state_the_configured_issuer() {
    let (key, jwk) = p384_key();
    let idp = IdP::start(vec![named(jwk, "k1")]).await;
    *idp.stated_issuer.lock().unwrap() = Some("https://evil.example".into());
    let verifier = Verifier::new(external_config(&idp.issuer));
    let token = encode(Algorithm::ES384, Some("k1"), &claims(&idp.issuer), &key);
    let e = refused(&verifier, &token).await;
    assert!(matches!(&e, TokenError::Discovery(_)), "{e:?}");
    assert_eq!(idp.counts(), (1, 0));

    // An issuer nobody listens on: a Discovery error, not a hang or a panic.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let verifier = Verifier::new(external_config(&closed));
    let token = encode(Algorithm::ES384, Some("k1"), &claims(&closed), &key);
    assert!(matches!(
        refused(&verifier, &token).await,
        TokenError::Discovery(_)
    ));
}

#[test]
fn only_signature_keys_of_accepted_types_are_used() {
    let (_, ec) = p384_key();
    assert!(external::verify_key_from_jwk(&ec).is_some());
    let mut enc = ec.clone();
    enc.common.public_key_use = Some(PublicKeyUse::Encryption);
    assert!(external::verify_key_from_jwk(&enc).is_none());
    let mut wrong_alg = ec.clone();
    wrong_alg.common.key_algorithm = Some(KeyAlgorithm::ES256);
    assert!(external::verify_key_from_jwk(&wrong_alg).is_none());
    let mut hmac = ec;
    hmac.common.key_algorithm = Some(KeyAlgorithm::HS256);
    assert!(external::verify_key_from_jwk(&hmac).is_none());
    let oct: Jwk =
        serde_json::from_value(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"})).unwrap();
    assert!(external::verify_key_from_jwk(&oct).is_none());
    let okp: Jwk = serde_json::from_value(json!({
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }))
    .unwrap();
    assert!(external::verify_key_from_jwk(&okp).is_none());
    // A 1024-bit RSA modulus is too short.
    let short: Jwk = serde_json::from_value(json!({
        "kty": "RSA", "e": "AQAB", "n": b64(&[0xC5u8; 128]), "alg": "RS256"
    }))
    .unwrap();
    assert!(external::verify_key_from_jwk(&short).is_none());
}
